"""HTTP endpoints (runs). Filled in by its own change."""

urlpatterns: list = []
