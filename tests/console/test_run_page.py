"""The run's page: Rerun (operators, through the runs service the API's rerun uses; the
message links the new run; a viewer cannot; a workflow that may not run says why and nothing
is written), its traces in time order and each node run's timings."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from rcm.context import org_context
from rcm.lookups import UserRole
from tests.console import factories
from tests.helpers import logged_in as _client
from tests.rcm.test_admin_security import staff  # noqa: F401 (a fixture)
from tests.workflows.test_admin import GOTO, HIT, MISSED, _actions
from workflows.models import NodeRun, WorkflowRun, WorkflowTrace
from workflows.services import authoring


def _page(run) -> str:
    return reverse("admin:workflows_workflowrun_change", args=(run.pk,))


def _rerun(run) -> str:
    return reverse("console:run_rerun", args=(run.pk,))


def _runs(tenant) -> list[WorkflowRun]:
    with org_context(tenant.id):
        return list(WorkflowRun.objects.order_by("id"))


@pytest.mark.django_db
def test_an_operator_reruns_a_run_and_is_taken_to_the_new_one(staff, org_a):  # noqa: F811
    workflow = factories.workflow(org_a, "Eligibility")
    (run,) = factories.ended(org_a, workflow, timezone.now(), result="failure", outcome="denied")
    client = _client(staff[UserRole.OPERATOR])
    assert f'action="{_rerun(run)}"' in client.get(_page(run)).text
    response = client.post(_rerun(run))
    old, new = _runs(org_a)
    assert old.pk == run.pk
    assert (new.input, new.revision_id, new.created_by_id) == (
        run.input,
        run.revision_id,
        staff[UserRole.OPERATOR].pk,
    )
    assert response.status_code == 302 and response["Location"] == _page(new)
    (message,) = [str(message) for message in get_messages(response.wsgi_request)]
    assert message == (
        f'Started <a href="{_page(new)}">run {new.pk}</a> with the input of run {run.pk}.'
    )


@pytest.mark.django_db
def test_a_viewer_sees_no_rerun_and_cannot_post_one(staff, org_a):  # noqa: F811
    run = factories.run(org_a)
    client = _client(staff[UserRole.VIEWER])
    assert _rerun(run) not in client.get(_page(run)).text
    assert client.post(_rerun(run)).status_code == 403
    assert [one.pk for one in _runs(org_a)] == [run.pk]


@pytest.mark.django_db
def test_a_rerun_the_workflow_refuses_says_why_and_starts_nothing(staff, org_a):  # noqa: F811
    workflow = factories.workflow(org_a, "Eligibility")
    run = factories.run(org_a, workflow)
    with org_context(org_a.id):
        authoring.workflow_suspend(workflow=workflow)
    response = _client(staff[UserRole.OPERATOR]).post(_rerun(run))
    assert response["Location"] == _page(run)
    (message,) = [str(message) for message in get_messages(response.wsgi_request)]
    assert message == (
        f"Run {run.pk} was not run again: This workflow is suspended; only an active workflow runs."
    )
    assert [one.pk for one in _runs(org_a)] == [run.pk]


@pytest.mark.django_db
def test_the_run_page_lists_its_traces_in_time_order_and_times_its_node_runs(
    staff,  # noqa: F811
    org_a,
):
    run = factories.run(org_a)
    now = timezone.now()
    _actions(org_a, run, now - timedelta(minutes=1), GOTO, MISSED)
    _actions(org_a, run, now - timedelta(minutes=3), HIT, attempt=2)  # recorded earlier
    with org_context(org_a.id):
        # The entry's own trace, recorded when the run started, between the two.
        WorkflowTrace.objects.filter(action_type="node.entry").update(
            created_at=now - timedelta(minutes=2)
        )
        NodeRun.objects.filter(run=run, node_key="check").update(
            started_at=now - timedelta(minutes=4, seconds=5), ended_at=now - timedelta(minutes=1)
        )
        expected = list(
            WorkflowTrace.objects.filter(run=run)
            .order_by("created_at", "id")
            .values_list("pk", flat=True)
        )
    page = _client(staff[UserRole.VIEWER]).get(_page(run))
    (_, traces) = page.context["inline_admin_formsets"]
    assert [form.form.instance.pk for form in traces] == expected
    assert [form.form.instance.action_type for form in traces] == [
        "web.fill",
        "node.entry",
        "web.goto",
        "web.fill",
    ]
    assert "3 min 05 s" in page.text  # the check node's duration
    # Times to the second.
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", page.text)
