"""The workflow editor in a real browser: an operator opens a workflow from the list, adds a
node and a transition with the forms and sees the picture drawn anew, validates and finds the
problem beside the node that causes it, fixes it and publishes the next revision; and a run's
page draws the path the run took."""

from __future__ import annotations

import pytest

from rcm.context import org_context
from rcm.lookups import UserRole
from tests.workflows.factories import decision, entry, general, outcome, workflow_build
from tests.workflows.test_engine import finished
from workflows.drawing.graph import EDGE_NOT_TAKEN, EDGE_TAKEN, PROBLEM_COLOUR
from workflows.services import runs

CHECK = {
    "method": "POST",
    "url": "https://portal.example.com/api/eligibility/check",
    "status_labels": {"404": "not_found"},
}


def _box(tab, key: str):
    return tab.page.locator(f'[data-testid=picture] g.node[data-key="{key}"]')


def _submit(tab, form: str) -> None:
    """Send a form and wait for the page it leads to (the editor again)."""
    with tab.page.expect_navigation():
        tab.page.click(f"{form} button[type=submit]")


def test_an_operator_adds_a_step_validates_fixes_it_and_publishes(console_for, org_a):
    operator = org_a[UserRole.OPERATOR]
    workflow, _ = workflow_build(
        org_id=org_a.id,
        name="Eligibility check",
        nodes=[
            entry("start"),
            general("check_portal", "http", CHECK),
            outcome("done"),
            outcome("denied", "failure"),
        ],
        edges=["start -> check_portal -> done", ("check_portal", "denied", "not_found")],
    )
    tab = console_for(operator, org_a)

    tab.open("/admin/console/workflows/")
    row = tab.page.locator("[data-testid=workflows] tr", has_text="Eligibility check")
    assert "active" in row.inner_text() and "1" in row.inner_text()
    tab.shot("workflows-list")
    with tab.page.expect_navigation():
        row.get_by_role("link", name="Eligibility check").click()
    assert _box(tab, "check_portal").is_visible()
    assert _box(tab, "escalate").count() == 0

    # A step for the portal's failures: a node, then the transition that leads to it.
    tab.page.fill("#id_key", "escalate")
    tab.page.select_option("#id_node_type", "general")
    tab.page.select_option("#id_kind", "noop")
    _submit(tab, "#node-form")
    assert "Node escalate added." in tab.page.locator("ul.messagelist").inner_text()
    assert _box(tab, "escalate").is_visible()  # drawn anew, with the new node

    tab.page.select_option("#edge_source", "check_portal")
    tab.page.fill("#edge_label", "error")
    tab.page.select_option("#edge_target", "escalate")
    _submit(tab, "#edge-form")
    edge = tab.page.locator(
        "[data-testid=picture] g.edge[data-source=check_portal][data-target=escalate]"
    )
    assert edge.count() == 1
    assert (
        tab.page.locator(
            '[data-testid=transitions] tr[data-edge="check_portal|error|escalate"]'
        ).count()
        == 1
    )
    tab.shot("editor")

    # escalate leads nowhere yet: validating says so, on its row and in the picture.
    with tab.page.expect_navigation():
        tab.page.get_by_role("link", name="Validate").click()
    problems = tab.page.locator('[data-testid=nodes] tr[data-key="escalate"] .wf-problem-cell')
    assert "No path leads from escalate to an outcome node." in problems.inner_text()
    assert _box(tab, "escalate").locator("rect").get_attribute("stroke") == PROBLEM_COLOUR
    assert _box(tab, "check_portal").locator("rect").get_attribute("stroke") != PROBLEM_COLOUR
    tab.shot("editor-problem")

    tab.page.select_option("#edge_source", "escalate")
    tab.page.fill("#edge_label", "success")
    tab.page.select_option("#edge_target", "denied")
    _submit(tab, "#edge-form")
    with tab.page.expect_navigation():
        tab.page.get_by_role("link", name="Validate").click()
    assert (
        "No problems: this draft can be published."
        in tab.page.locator("ul.messagelist").inner_text()
    )

    tab.page.fill("#publish_comment", "Escalate the portal's failures")
    _submit(tab, "form.wf-publish")
    assert (
        "Published revision 2 of Eligibility check."
        in tab.page.locator("ul.messagelist").inner_text()
    )
    assert tab.page.locator("[data-testid=latest-revision]").inner_text() == "2"
    tab.shot("editor-published")
    # The admin's dark theme follows the system's: the page keeps its contrast there too.
    tab.page.emulate_media(color_scheme="dark")
    tab.shot("editor-dark")


@pytest.mark.celery_worker
def test_a_runs_page_draws_the_path_the_run_took(console_for, celery_worker, org_a):
    workflow, _ = workflow_build(
        org_id=org_a.id,
        name="Plan routing",
        required_data=["plan"],
        nodes=[
            entry("start"),
            decision("route", [("input.plan == 'gold'", "gold")], "basic"),
            general("premium"),
            general("standard"),
            outcome("done"),
            outcome("denied", "failure"),
        ],
        edges=[
            "start -> route -[gold]-> premium -> done",
            "route -[basic]-> standard -> done",
            ("premium", "denied", "error"),
        ],
    )
    with org_context(org_a.id):
        started = runs.run_start(workflow=workflow, input={"plan": "gold"})
    run = finished(org_a.id, started.pk)
    assert run.status == "completed"
    tab = console_for(org_a[UserRole.OPERATOR], org_a)
    tab.open(f"/admin/workflows/workflowrun/{run.pk}/change/")
    picture = tab.page.locator("svg.wf-graph")
    strokes = {
        (edge.get_attribute("data-source"), edge.get_attribute("data-target")): edge.locator(
            "path"
        ).get_attribute("stroke")
        for edge in picture.locator("g.edge").all()
    }
    taken = {("start", "route"), ("route", "premium"), ("premium", "done")}
    assert {pair for pair, stroke in strokes.items() if stroke == EDGE_TAKEN[0]} == taken
    assert {pair for pair, stroke in strokes.items() if stroke == EDGE_NOT_TAKEN[0]} == (
        set(strokes) - taken
    )
    assert picture.locator('g.node[data-key="premium"]').text_content().endswith("completed")
    picture.scroll_into_view_if_needed()
    tab.shot("graph-run")
