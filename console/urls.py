"""The console's routes, mounted at /admin/console/ (inside the admin site: its log-in, its
organization context). Each view is a ``console.access.console_view``."""

from django.urls import path

from console.views import batch, batch_upload, home

app_name = "console"

urlpatterns = [
    path("", home.home, name="home"),
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
