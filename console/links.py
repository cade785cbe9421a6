"""Where the console sends people for each kind of thing: one function per kind, so that when a
console page takes over from an admin page (the batch page, the workflow editor) the switch is
one line here and every link follows."""

from __future__ import annotations

from django.urls import reverse


def batch_url(job_id: int) -> str:
    return reverse("console:batch", args=(job_id,))


def batch_list_url() -> str:
    return reverse("console:batches")


def batch_upload_url() -> str:
    return reverse("console:batch_upload")


def run_url(run_id: int) -> str:
    return reverse("admin:workflows_workflowrun_change", args=(run_id,))


def workflow_url(workflow_id) -> str:
    return reverse("console:workflow_editor", args=(workflow_id,))


def workflow_add_url() -> str:
    # The workflows page holds the "New workflow" form.
    return reverse("console:workflows")


def endpoint_add_url() -> str:
    return reverse("admin:tenants_endpoint_add")


def endpoint_url(endpoint_id: int) -> str:
    return reverse("admin:tenants_endpoint_change", args=(endpoint_id,))


def state_url(state_id: int) -> str:
    return reverse("console:memory_state", args=(state_id,))
