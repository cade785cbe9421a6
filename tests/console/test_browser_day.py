"""The console's day from the two sides the operator's own tests do not drive (those are
test_browser_batch.py: upload to results; test_browser_editor.py: edit and publish a graph;
test_browser_home.py: the home, the run page, the memory browser):

- a viewer opens every page an operator works on and finds no button to press; the requests
  those buttons would send, forged from the viewer's own signed-in page with its CSRF token,
  are refused and change nothing;
- a member of another organization who has every one of those URLs gets "not found".
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from rcm.context import org_context
from rcm.lookups import UserRole
from tests.console import factories
from workflows.models import BatchJob, Workflow, WorkflowRun

# Text of every button and form that changes something, on any console page.
ACTIONS = (
    "Retry failed",
    "Cancel",
    "Rerun",
    "Publish",
    "Add node",
    "Add transition",
    "Retire",
    "Bring back",
    "Upload",
    "New workflow",
)


@pytest.fixture
def day(org_a):
    """What an operator of org A left behind by the afternoon: a workflow with a run, a batch
    with a failed row, a page remembered."""
    workflow = factories.workflow(org_a, "Eligibility (UHC)")
    run = factories.run(org_a, workflow)
    job = factories.batch(org_a, workflow, rows=3)
    with org_context(org_a.id):
        BatchJob.objects.filter(pk=job.pk).update(pending_rows=2, failed_rows=1, processed_rows=1)
        job.items.filter(row_number=2).update(status="failed", error_message="failure")
    state = factories.micro_state(org_a)
    return {
        "home": reverse("console:home"),
        "batches": reverse("console:batches"),
        "batch": reverse("console:batch", args=(job.pk,)),
        "workflows": reverse("console:workflows"),
        "editor": reverse("console:workflow_editor", args=(workflow.pk,)),
        "run": reverse("admin:workflows_workflowrun_change", args=(run.pk,)),
        "memory": reverse("console:memory"),
        "state": reverse("console:memory_state", args=(state.pk,)),
        "_ids": {"job": job.pk, "workflow": workflow.pk, "run": run.pk, "state": state.pk},
    }


def _pages(day) -> dict[str, str]:
    return {name: url for name, url in day.items() if not name.startswith("_")}


def test_a_viewer_sees_every_page_and_no_button(console_for, org_a, day):
    tab = console_for(org_a[UserRole.VIEWER], org_a)
    for name, url in _pages(day).items():
        response = tab.open(url)
        assert response.status == 200, (name, response.status)
        page = tab.page
        for action in ACTIONS:
            buttons = page.get_by_role("button", name=action, exact=True)
            links = page.get_by_role("link", name=action, exact=True)
            assert buttons.count() == 0 and links.count() == 0, (name, action)
        assert page.locator("form[method=post] textarea, form[method=post] select").count() == 0
        tab.shot(f"day-viewer-{name}")


def test_a_viewers_forged_posts_are_refused_and_change_nothing(console_for, org_a, day):
    tab = console_for(org_a[UserRole.VIEWER], org_a)
    tab.open(day["batch"])
    ids = day["_ids"]
    forged = {
        reverse("console:batch_retry_failed", args=(ids["job"],)): {},
        reverse("console:batch_cancel", args=(ids["job"],)): {},
        reverse("console:run_rerun", args=(ids["run"],)): {},
        reverse("console:workflow_publish", args=(ids["workflow"],)): {"comment": "x"},
        reverse("console:workflow_node_remove", args=(ids["workflow"],)): {"node": "1"},
        reverse("console:memory_state_retire", args=(ids["state"],)): {},
    }
    csrf = tab.context.cookies()
    token = next(cookie["value"] for cookie in csrf if cookie["name"] == "csrftoken")
    for url, data in forged.items():
        response = tab.page.request.post(
            tab.base_url + url,
            form={**data, "csrfmiddlewaretoken": token},
            headers={"Referer": tab.base_url + day["batch"]},
        )
        assert response.status == 403, (url, response.status)
    with org_context(org_a.id):
        job = BatchJob.objects.get(pk=ids["job"])
        assert (job.failed_rows, job.cancel_requested) == (1, False)
        assert WorkflowRun.objects.count() == 1
        assert Workflow.objects.get(pk=ids["workflow"]).revisions.count() == 1


def test_another_organizations_pages_are_not_found(console_for, org_a, org_b, day):
    tab = console_for(org_b[UserRole.ORG_ADMIN], org_b)
    for name in ("batch", "editor", "run", "state"):
        response = tab.open(day[name])
        assert response.status == 404, (name, response.status)
        assert "Eligibility (UHC)" not in tab.page.content()
    tab.shot("day-other-organization")
