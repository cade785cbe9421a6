"""Split by concern: requirements, authoring, runs (and traces)."""
