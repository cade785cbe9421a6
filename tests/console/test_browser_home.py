"""The console in a real browser: signing in lands on the console's home; the home's batch bar
moves while a real worker runs the batch, without a reload; an organization without a
workflow sees its first steps; Rerun on a run's page; the memory browser's list and state
page, with Retire. Each page's screenshot is kept under artefacts/console/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from console.views import home as home_views
from memory import services as memory_services
from memory.models import MicroState
from rcm.context import org_context
from rcm.lookups import UserRole
from tests.console import factories
from tests.workflows.factories import decision, entry, general, outcome, workflow_build
from tests.workflows.test_admin import HIT, MISSED, REPAIRED, _actions
from workflows.models import BatchJob, WorkflowRun, WorkflowTrace
from workflows.services.batch_upload import batch_job_upload


def test_signing_in_at_the_root_lands_on_the_console_home(console_for, org_a):
    tab = console_for(org_a[UserRole.OPERATOR], org_a)
    tab.open("/")
    assert tab.page.url.endswith("/admin/console/")
    assert tab.page.locator("nav.console-nav").is_visible()
    tab.shot("home-operator")


def test_an_organization_without_a_workflow_sees_its_first_steps(console_for, org_a):
    tab = console_for(org_a[UserRole.ORG_ADMIN], org_a)
    tab.open("/admin/console/")
    steps = tab.page.locator("ol.first-steps > li")
    assert steps.count() == 3
    assert tab.page.get_by_role("link", name="Create a workflow").is_visible()
    tab.shot("home-first-run")
    tab.page.get_by_role("link", name="Create a workflow").click()
    tab.page.wait_for_load_state()
    assert tab.page.url.endswith(reverse("console:workflows"))


@pytest.mark.celery_worker
def test_a_batch_in_flight_moves_its_bar_without_a_reload(
    console_for, celery_worker, org_a, monkeypatch
):
    # The week's panels counted at each request: the page is read again once the batch ends.
    monkeypatch.setattr(home_views, "WEEK_CACHE_SECONDS", 0)
    tab = console_for(org_a[UserRole.OPERATOR], org_a)
    workflow, _ = workflow_build(
        org_id=org_a.id,
        name="Eligibility",
        required_data=["member_id", "plan"],
        nodes=[
            entry("start"),
            # A pause per row, so that the batch is still running while the page watches it.
            general("pause", "wait", {"seconds": 0.3}),
            decision("route", [("input.plan == 'gold'", "gold")], "other"),
            outcome("done"),
            outcome("denied", "failure"),
        ],
        edges=["start -> pause -> route -[gold]-> done", ("route", "denied", "other")],
    )
    rows = [{"member_id": f"W{n}", "plan": "silver" if n % 4 == 0 else "gold"} for n in range(12)]
    with org_context(org_a.id):
        job = batch_job_upload(workflow=workflow, rows=rows, max_concurrency=1)
    tab.open("/admin/console/")
    page = tab.page
    row = page.locator(f'tr.batch-row[data-batch="{job.pk}"]')
    first = int(row.locator('[data-field="processed"]').text_content())
    assert first < len(rows)
    page.evaluate("window.loadedOnce = true")  # gone if the page reloaded
    page.wait_for_function(
        "([id, first]) => Number(document.querySelector("
        '`tr[data-batch="${id}"] [data-field="processed"]`).textContent) > first',
        arg=[job.pk, first],
        timeout=20_000,
    )
    assert 0 < _bar_width(row) < 100 or _done(row)
    tab.shot("home")
    page.wait_for_function(
        "(id) => document.querySelector(`tr[data-batch=\"${id}\"]`).dataset.done === '1'",
        arg=job.pk,
        timeout=30_000,
    )
    assert page.evaluate("window.loadedOnce") is True
    assert row.locator('[data-field="processed"]').text_content() == str(len(rows))
    assert row.locator('[data-field="failed"]').text_content() == "3"
    assert page.locator("#batches-in-flight").get_attribute("data-polling") == "off"
    with org_context(org_a.id):
        assert BatchJob.objects.get(pk=job.pk).successful_rows == 9
    # The page read again: the week's chart and the failures have the batch's runs.
    tab.open("/admin/console/")
    assert page.locator("#success-per-workflow svg .line").count() == 1
    assert "9/12" in page.locator("#success-per-workflow table").text_content()
    failures = page.locator("#failures table tbody tr")
    assert failures.count() == 1 and "denied" in failures.text_content()
    tab.shot("home-after-batch")


def _bar_width(row) -> float:
    return row.locator(".console-bar .ok").evaluate("(bar) => parseFloat(bar.style.width)")


def _done(row) -> bool:
    return row.get_attribute("data-done") == "1"


def test_rerun_from_the_run_page_opens_the_new_run(console_for, org_a):
    tab = console_for(org_a[UserRole.OPERATOR], org_a)
    workflow = factories.workflow(org_a, "Eligibility")
    (run,) = factories.ended(org_a, workflow, timezone.now(), result="failure", outcome="denied")
    _actions(org_a, run, timezone.now() - timedelta(minutes=1), HIT, REPAIRED, MISSED)
    tab.open(reverse("admin:workflows_workflowrun_change", args=(run.pk,)))
    tab.shot("run-page")
    tab.page.get_by_role("button", name="Rerun").click()
    tab.page.wait_for_load_state()
    with org_context(org_a.id):
        new = WorkflowRun.objects.exclude(pk=run.pk).get()
    assert tab.page.url.endswith(reverse("admin:workflows_workflowrun_change", args=(new.pk,)))
    message = tab.page.locator("ul.messagelist li.success")
    assert message.text_content().strip() == (
        f"Started run {new.pk} with the input of run {run.pk}."
    )
    assert message.get_by_role("link", name=f"run {new.pk}").is_visible()
    tab.shot("run-page-rerun")


def test_the_memory_browser_lists_states_and_retires_one(console_for, org_a):
    tab = console_for(org_a[UserRole.OPERATOR], org_a)
    workflow = factories.workflow(org_a, "Eligibility")
    run = factories.run(org_a, workflow)
    states = [
        factories.micro_state(org_a, label, workflow=workflow)
        for label in ("Member ID field", "Date of birth field", "Search button", "Results table")
    ]
    state = states[0]
    # Its uses as the web agent records them, in its traces and in the state's counters: four
    # hits, a miss, then hits again, the last one now. The state was stored before them.
    outcomes = [True, True, True, True, False, True, True]
    start = timezone.now() - timedelta(hours=len(outcomes) - 1)
    for number, success in enumerate(outcomes):
        _actions(org_a, run, start + timedelta(hours=number), HIT if success else MISSED)
    with org_context(org_a.id):
        WorkflowTrace.objects.filter(action_type__startswith="web.").update(
            action_detail={"state": state.pk, "action": 1}
        )
        MicroState.objects.filter(pk=state.pk).update(created_at=start - timedelta(hours=1))
        for success in outcomes:
            state = memory_services.micro_state_outcome_record(state=state, success=success)
    tab.open(reverse("console:memory"))
    assert tab.page.locator("table.memory-table tbody tr").count() == len(states)
    tab.shot("memory-list")
    tab.page.get_by_role("link", name=str(state.pk), exact=True).click()
    tab.page.wait_for_load_state()
    assert tab.page.locator("#success-curve svg .line circle").count() == len(outcomes)
    facts = tab.page.locator("dl.console-facts").text_content()
    assert "after 7 uses (6 succeeded, 1 failed)" in facts
    assert tab.page.locator("#neighbours tbody tr").count() == len(states) - 1
    frame = tab.page.frame_locator("iframe.console-snapshot")
    assert frame.locator("label").text_content() == "Member ID field"
    # Chromium paints a frame only inside the viewport: the whole page made the viewport.
    height = tab.page.evaluate("document.documentElement.scrollHeight")
    tab.page.set_viewport_size({"width": 1400, "height": height})
    tab.shot("memory-state")
    tab.page.get_by_role("button", name="Retire").click()
    tab.page.wait_for_load_state()
    assert "is retired" in tab.page.locator("ul.messagelist li").text_content()
    assert tab.page.get_by_role("button", name="Bring back").is_visible()
    with org_context(org_a.id):
        assert MicroState.objects.get(pk=state.pk).is_retired
