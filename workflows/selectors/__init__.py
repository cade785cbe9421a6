"""Split by concern: requirements, authoring, batch, runs (and traces), and the web actions'
traces by tier."""
