"""HTTP endpoints (authoring). Filled in by its own change."""

urlpatterns: list = []
