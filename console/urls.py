"""The console's routes, mounted at /admin/console/ (inside the admin site: its log-in, its
organization context). Each view is a ``console.access.console_view``."""

from django.urls import path

from console.views import batch, batch_upload, home, memory, runs, workflows

app_name = "console"

urlpatterns = [
    path("", home.home, name="home"),
    # -- workflows and their editor --
    path("workflows/", workflows.workflows, name="workflows"),
    path("workflows/new/", workflows.workflow_create, name="workflow_create"),
    path("workflows/<uuid:workflow_id>/", workflows.workflow_editor, name="workflow_editor"),
    path(
        "workflows/<uuid:workflow_id>/validate/",
        workflows.workflow_validate,
        name="workflow_validate",
    ),
    path(
        "workflows/<uuid:workflow_id>/nodes/add/",
        workflows.workflow_node_add,
        name="workflow_node_add",
    ),
    path(
        "workflows/<uuid:workflow_id>/nodes/edit/",
        workflows.workflow_node_edit,
        name="workflow_node_edit",
    ),
    path(
        "workflows/<uuid:workflow_id>/nodes/remove/",
        workflows.workflow_node_remove,
        name="workflow_node_remove",
    ),
    path(
        "workflows/<uuid:workflow_id>/transitions/add/",
        workflows.workflow_edge_add,
        name="workflow_edge_add",
    ),
    path(
        "workflows/<uuid:workflow_id>/transitions/remove/",
        workflows.workflow_edge_remove,
        name="workflow_edge_remove",
    ),
    path(
        "workflows/<uuid:workflow_id>/publish/",
        workflows.workflow_publish,
        name="workflow_publish",
    ),
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
    # -- batches (issue 14: upload, the list, one batch and its buttons) --
    path("upload/", batch_upload.batch_upload, name="batch_upload"),
    path("batches/", batch.batches, name="batches"),
    path("batches/<int:job_id>/", batch.batch, name="batch"),
    path("batches/<int:job_id>/progress/", batch.batch_progress, name="batch_progress"),
    path("batches/<int:job_id>/results.csv", batch.batch_results, name="batch_results"),
    path("batches/<int:job_id>/failed-rows.csv", batch.batch_failed_rows, name="batch_failed_rows"),
    path(
        "batches/<int:job_id>/retry-failed/",
        batch.batch_retry_failed,
        name="batch_retry_failed",
    ),
    path("batches/<int:job_id>/cancel/", batch.batch_cancel, name="batch_cancel"),
    # -- end of batches --
]
