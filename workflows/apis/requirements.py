"""HTTP endpoints (requirements). Filled in by its own change."""

urlpatterns: list = []
