"""The console's routes, mounted at /admin/console/ (inside the admin site: its log-in, its
organization context). Each view is a ``console.access.console_view``."""

from django.urls import path

from console.views import home, memory, runs

app_name = "console"

urlpatterns = [
    path("", home.home, name="home"),
    # -- home, run page, memory browser (issue 14: home) --
    path("batches.json", home.home_batches, name="home_batches"),
    path("runs/<int:run_id>/rerun/", runs.run_rerun, name="run_rerun"),
    path("memory/", memory.memory, name="memory"),
    path("memory/<int:state_id>/", memory.memory_state, name="memory_state"),
    path("memory/<int:state_id>/retire/", memory.memory_state_retire, name="memory_state_retire"),
    path(
        "memory/<int:state_id>/bring-back/",
        memory.memory_state_unretire,
        name="memory_state_unretire",
    ),
]
