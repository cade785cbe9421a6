"""The workflow list and editor: each route's happy path, bad input refused next to its field
with nothing written, a stale page refused, and viewers reading without forms (the security
suite, tests/console/test_security.py, holds every route to its role and organization)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from django.urls import reverse

from console.forms.workflows import NOT_AN_OBJECT, STALE
from console.views import workflows as views
from rcm.context import org_context
from rcm.lookups import UserRole, WorkflowStatus
from tests.helpers import logged_in as _client
from tests.helpers import messages_of as _messages
from tests.rcm.test_admin_security import staff  # noqa: F401 (a fixture)
from tests.workflows.factories import decision, entry, general, outcome, workflow_build
from workflows.drawing.graph import PROBLEM_COLOUR
from workflows.models import Workflow, WorkflowNode, WorkflowRevision, WorkflowTransition
from workflows.services import authoring

SVG = "{http://www.w3.org/2000/svg}"
CHECK_URL = "https://portal.example.com/api/eligibility/check"


@pytest.fixture
def operator(staff):  # noqa: F811
    return _client(staff[UserRole.OPERATOR])


@pytest.fixture
def viewer(staff):  # noqa: F811
    return _client(staff[UserRole.VIEWER])


def _draft(tenant, name: str = "Eligibility", **options) -> Workflow:
    options.setdefault("nodes", [entry("start"), general("check"), outcome("done")])
    options.setdefault("edges", ["start -> check -> done"])
    workflow, _ = workflow_build(org_id=tenant.id, name=name, publish=False, **options)
    return workflow


def _reload(tenant, workflow: Workflow) -> Workflow:
    with org_context(tenant.id):
        return Workflow.objects.get(pk=workflow.pk)


def _graph(tenant, workflow: Workflow) -> tuple[dict, set]:
    """The draft's nodes (key -> row) and transitions (from, label, to)."""
    with org_context(tenant.id):
        nodes = {node.key: node for node in WorkflowNode.objects.filter(workflow=workflow)}
        edges = {
            (t.from_node.key, t.action_label, t.to_node.key)
            for t in WorkflowTransition.objects.filter(workflow=workflow).select_related(
                "from_node", "to_node"
            )
        }
    return nodes, edges


def _url(name: str, workflow: Workflow | None = None) -> str:
    return reverse(f"console:{name}", args=(workflow.pk,) if workflow else ())


def _node_post(workflow: Workflow, **fields) -> dict:
    return {
        "version": workflow.version,
        "node_type": "general",
        "kind": "",
        "config": "",
        "trigger_rule": "none_failed_min_one_success",
        **fields,
    }


def _picture_keys(page) -> dict[str, str]:
    """Each node of the editor's picture -> the stroke of its box."""
    svg = str(page.context["picture"])
    assert svg in page.text
    return {
        group.get("data-key"): group.find(f"{SVG}rect").get("stroke")
        for group in ET.fromstring(svg).iter(f"{SVG}g")
        if group.get("data-key")
    }


# -- the list ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_list_links_each_workflow_to_its_editor_with_status_and_revision(
    operator, org_a, org_b
):
    draft = _draft(org_a, "Draft one")
    published, _ = workflow_build(
        org_id=org_a.id, name="Published one", nodes=[entry(), outcome()], edges=["start -> done"]
    )
    theirs = _draft(org_b, "Theirs")
    page = operator.get(_url("workflows"))
    assert page.status_code == 200
    rows = {row.name: row for row in page.context["workflows"]}
    assert set(rows) == {"Draft one", "Published one"}
    assert rows["Published one"].latest_revision_num == 1
    assert rows["Draft one"].latest_revision_num is None
    for workflow in (draft, published):
        assert _url("workflow_editor", workflow) in page.text
    assert _url("workflow_editor", theirs) not in page.text
    assert 'id="create-form"' in page.text


@pytest.mark.django_db
def test_an_operator_creates_a_workflow_and_lands_in_its_editor(operator, org_a):
    response = operator.post(
        _url("workflow_create"), {"name": "Prior auth", "task_type": "eligibility/check"}
    )
    with org_context(org_a.id):
        workflow = Workflow.objects.get(name="Prior auth")
    assert response.status_code == 302
    assert response["Location"] == _url("workflow_editor", workflow)
    assert str(workflow.task_type) == "eligibility/check"
    assert workflow.status_id == WorkflowStatus.DRAFT
    assert _messages(response) == [views.CREATED.format(name="Prior auth")]


@pytest.mark.django_db
def test_a_taken_name_is_refused_next_to_the_name_and_nothing_is_created(operator, org_a):
    _draft(org_a, "Prior auth")
    response = operator.post(_url("workflow_create"), {"name": "Prior auth", "task_type": ""})
    assert response.status_code == 409
    assert response.context["create_form"].errors == {"name": [authoring.WORKFLOW_EXISTS]}
    assert 'id="id_name_errors"' in response.text
    with org_context(org_a.id):
        assert Workflow.objects.filter(name="Prior auth").count() == 1


@pytest.mark.django_db
def test_a_viewer_reads_the_list_without_the_form_and_a_forged_create_is_refused(viewer, org_a):
    _draft(org_a)
    page = viewer.get(_url("workflows"))
    assert page.status_code == 200 and 'id="create-form"' not in page.text
    assert viewer.post(_url("workflow_create"), {"name": "Sneaky"}).status_code == 403
    with org_context(org_a.id):
        assert not Workflow.objects.filter(name="Sneaky").exists()


# -- the editor ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_editor_draws_the_draft_and_lists_its_nodes_and_transitions(operator, org_a):
    workflow = _draft(
        org_a,
        nodes=[
            entry("start"),
            general("check", "http", {"method": "POST", "url": CHECK_URL}),
            outcome("done"),
        ],
    )
    page = operator.get(_url("workflow_editor", workflow))
    assert page.status_code == 200
    assert set(_picture_keys(page)) == {"start", "check", "done"}
    rows = {node["row"].key: node for node in page.context["nodes"]}
    assert rows["check"]["summary"].short == "http POST …/check"
    assert rows["check"]["retry"].startswith("default: 3 attempts")
    assert 'data-edge="start|success|check"' in page.text
    assert 'data-edge="check|success|done"' in page.text
    for name in ("workflow_node_add", "workflow_edge_add", "workflow_publish"):
        assert _url(name, workflow) in page.text
    assert f'value="{workflow.version}"' in page.text


@pytest.mark.django_db
def test_what_operators_typed_is_shown_escaped(operator, org_a):
    label = '"><img src=x onerror=alert(1)>'
    workflow = _draft(org_a, edges=["start -> check -> done", ("check", "done", label)])
    page = operator.get(_url("workflow_editor", workflow))
    assert "<img" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text  # the table and the picture
    assert _picture_keys(page)  # the picture is still well-formed


@pytest.mark.django_db
def test_a_viewer_sees_the_graph_and_tables_but_no_form_or_button(viewer, org_a):
    workflow = _draft(org_a)
    page = viewer.get(_url("workflow_editor", workflow))
    assert page.status_code == 200
    assert set(_picture_keys(page)) == {"start", "check", "done"}
    assert "<form" not in page.text.split('id="content-main"')[1]
    for name in (
        "workflow_node_add",
        "workflow_node_remove",
        "workflow_edge_add",
        "workflow_publish",
    ):
        assert _url(name, workflow) not in page.text
    assert _url("workflow_validate", workflow) in page.text  # reading, as the API lets viewers


@pytest.mark.django_db
def test_forged_writes_of_a_viewer_change_nothing(viewer, org_a):
    workflow = _draft(org_a)
    nodes, edges = _graph(org_a, workflow)
    attempts = {
        "workflow_node_add": _node_post(workflow, key="sneaky"),
        "workflow_node_edit": _node_post(workflow, key="renamed", node=nodes["check"].pk),
        "workflow_node_remove": {"version": workflow.version, "row": nodes["check"].pk},
        "workflow_edge_add": {"version": workflow.version, "source": "start", "target": "done"},
        "workflow_edge_remove": {"version": workflow.version, "row": 1},
        "workflow_publish": {"version": workflow.version},
    }
    for name, data in attempts.items():
        assert viewer.post(_url(name, workflow), data).status_code == 403, name
    assert _graph(org_a, workflow) == (nodes, edges)
    assert _reload(org_a, workflow).version == workflow.version
    with org_context(org_a.id):
        assert not WorkflowRevision.objects.filter(workflow=workflow).exists()


# -- nodes ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_operator_adds_a_node_and_the_picture_shows_it(operator, org_a):
    workflow = _draft(org_a)
    config = {"method": "POST", "url": CHECK_URL, "status_labels": {"404": "not_found"}}
    response = operator.post(
        _url("workflow_node_add", workflow),
        _node_post(
            workflow,
            key="verify",
            kind="http",
            config=json.dumps(config),
            maximum_attempts="5",
            initial_interval_s="2",
            non_retryable_error_kinds="http_400, template_error",
            timeout_s="30",
        ),
    )
    assert response.status_code == 302
    assert response["Location"] == _url("workflow_editor", workflow)
    assert _messages(response) == [views.NODE_ADDED.format(key="verify")]
    node = _graph(org_a, workflow)[0]["verify"]
    assert (node.kind, node.config, node.timeout_s) == ("http", config, 30)
    assert node.retry_policy == {
        "maximum_attempts": 5,
        "initial_interval_s": 2.0,
        "non_retryable_error_kinds": ["http_400", "template_error"],
    }
    assert _reload(org_a, workflow).version == workflow.version + 1
    assert "verify" in _picture_keys(operator.get(response["Location"]))


@pytest.mark.django_db
def test_a_config_that_is_not_json_is_named_next_to_the_field_and_nothing_is_saved(operator, org_a):
    workflow = _draft(org_a)
    before = _graph(org_a, workflow)
    response = operator.post(
        _url("workflow_node_add", workflow),
        _node_post(workflow, key="verify", kind="http", config='{"url": "https://x.test",}'),
    )
    assert response.status_code == 400
    errors = response.context["node_form"].errors
    assert list(errors) == ["config"]
    assert errors["config"][0].startswith("This is not valid JSON: ")
    assert "(line 1, column 26)" in errors["config"][0]
    assert 'id="id_config_errors"' in response.text  # shown under the config field
    assert _graph(org_a, workflow) == before
    assert _reload(org_a, workflow).version == workflow.version


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ('{"url": "https://x.test", "body": {"n": NaN}}', "NaN is not a JSON number"),
        ('{"url": "https://x.test", "body": "a\\u0000"}', "NUL character"),
        ("[" * 3000 + "]" * 3000, "nested at most 64 levels"),
        ('{"url": "' + "x" * 100_001 + '"}', "at most 100000 characters"),
    ],
    ids=["nan", "nul", "deep", "long"],
)
def test_json_the_database_could_not_store_is_refused_as_the_api_refuses_it(
    operator, org_a, config, expected
):
    workflow = _draft(org_a)
    before = _graph(org_a, workflow)
    response = operator.post(
        _url("workflow_node_add", workflow),
        _node_post(workflow, key="verify", kind="http", config=config),
    )
    assert response.status_code == 400
    assert expected in response.context["node_form"].errors["config"][0]
    assert _graph(org_a, workflow) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "config", "expected"),
    [
        ("http", {"method": "POST"}, "For kind http: url is required."),
        ("wait", {"seconds": -1}, "For kind wait: seconds must be a number in [0, 604800]."),
        ("http", ["not", "an", "object"], None),
    ],
)
def test_a_config_the_kind_refuses_is_explained_next_to_the_field(
    operator, org_a, kind, config, expected
):
    workflow = _draft(org_a)
    response = operator.post(
        _url("workflow_node_add", workflow),
        _node_post(workflow, key="verify", kind=kind, config=json.dumps(config)),
    )
    assert response.status_code == 400
    assert response.context["node_form"].errors["config"] == [expected or NOT_AN_OBJECT]
    assert "verify" not in _graph(org_a, workflow)[0]


@pytest.mark.django_db
def test_what_the_service_refuses_is_shown_next_to_its_field(operator, org_a):
    workflow = _draft(org_a)
    cases = [
        ({"key": "check"}, "key", "Two nodes have the key 'check'"),
        ({"key": "has space"}, "key", "Key 'has space' must be 1-64 letters"),
        (
            {"key": "x", "node_type": "outcome", "kind": "http", "config": '{"result": "success"}'},
            "kind",
            "An outcome node has no kind",
        ),
        ({"key": "x", "node_type": "outcome"}, "config", "For an outcome node: An outcome's"),
        ({"key": "x", "timeout_s": "99999"}, "timeout_s", "timeout_s must be between 1 and"),
        ({"key": "x", "maximum_attempts": "0"}, "maximum_attempts", "Must be an integer in [1,"),
    ]
    for fields, field, start in cases:
        response = operator.post(
            _url("workflow_node_add", workflow), _node_post(workflow, **fields)
        )
        assert response.status_code == 400, fields
        errors = response.context["node_form"].errors
        assert list(errors) == [field], (fields, errors)
        assert errors[field][0].startswith(start), errors
    assert set(_graph(org_a, workflow)[0]) == {"start", "check", "done"}


@pytest.mark.django_db
def test_a_change_from_a_stale_page_is_refused_and_nothing_is_saved(operator, org_a):
    workflow = _draft(org_a)
    stale = workflow.version
    with org_context(org_a.id):  # someone else saves a change meanwhile
        authoring.workflow_update(workflow=workflow, version=stale, description="theirs")
    nodes, _ = _graph(org_a, workflow)
    for name, data in {
        "workflow_node_add": _node_post(workflow, key="mine", version=stale),
        "workflow_node_remove": {"version": stale, "row": nodes["check"].pk},
        "workflow_edge_add": {"version": stale, "source": "start", "target": "done", "label": "ok"},
        "workflow_publish": {"version": stale},
    }.items():
        response = operator.post(_url(name, workflow), data)
        assert response.status_code == 409, name
        assert STALE in response.text, name
        assert STALE.startswith("This workflow was changed by someone else since you opened it")
    assert set(_graph(org_a, workflow)[0]) == {"start", "check", "done"}
    assert ("start", "success", "done") not in _graph(org_a, workflow)[1]
    assert _reload(org_a, workflow).version == stale + 1
    with org_context(org_a.id):
        assert not WorkflowRevision.objects.filter(workflow=workflow).exists()


@pytest.mark.django_db
def test_an_operator_edits_a_node_from_its_filled_in_form(operator, org_a):
    workflow = _draft(org_a)
    check = _graph(org_a, workflow)[0]["check"]
    page = operator.get(f"{_url('workflow_editor', workflow)}?edit={check.pk}")
    form = page.context["node_form"]
    assert (form.initial["key"], form.initial["kind"], form.initial["node"]) == (
        "check",
        "noop",
        check.pk,
    )
    assert _url("workflow_node_edit", workflow) in page.text
    response = operator.post(
        _url("workflow_node_edit", workflow),
        _node_post(
            workflow,
            node=check.pk,
            key="check_portal",
            kind="wait",
            config='{"seconds": 60}',
            maximum_attempts="2",
        ),
    )
    assert response.status_code == 302
    nodes, edges = _graph(org_a, workflow)
    assert (nodes["check_portal"].kind, nodes["check_portal"].config) == ("wait", {"seconds": 60})
    assert nodes["check_portal"].retry_policy == {"maximum_attempts": 2}
    assert edges == {("start", "success", "check_portal"), ("check_portal", "success", "done")}


@pytest.mark.django_db
def test_a_node_of_another_workflow_is_not_found(operator, org_a):
    workflow, other = _draft(org_a), _draft(org_a, "Other")
    theirs = _graph(org_a, other)[0]["check"]
    assert operator.get(f"{_url('workflow_editor', workflow)}?edit={theirs.pk}").status_code == 404
    assert operator.get(f"{_url('workflow_editor', workflow)}?edit=nonsense").status_code == 404
    response = operator.post(
        _url("workflow_node_remove", workflow), {"version": workflow.version, "row": theirs.pk}
    )
    assert response.status_code == 404
    assert "check" in _graph(org_a, other)[0]


@pytest.mark.django_db
def test_an_operator_removes_a_node_with_its_transitions(operator, org_a):
    workflow = _draft(org_a)
    check = _graph(org_a, workflow)[0]["check"]
    response = operator.post(
        _url("workflow_node_remove", workflow), {"version": workflow.version, "row": check.pk}
    )
    assert response.status_code == 302
    assert _messages(response) == [views.NODE_REMOVED.format(key="check")]
    assert _graph(org_a, workflow) == (_graph(org_a, workflow)[0], set())
    assert set(_graph(org_a, workflow)[0]) == {"start", "done"}


# -- transitions ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_operator_adds_and_removes_a_transition(operator, org_a):
    workflow = _draft(org_a)
    response = operator.post(
        _url("workflow_edge_add", workflow),
        {"version": workflow.version, "source": "check", "target": "done", "label": "not_found"},
    )
    assert response.status_code == 302
    edges = _graph(org_a, workflow)[1]
    assert ("check", "not_found", "done") in edges
    with org_context(org_a.id):
        added = WorkflowTransition.objects.get(workflow=workflow, action_label="not_found")
    response = operator.post(
        _url("workflow_edge_remove", workflow),
        {"version": workflow.version + 1, "row": added.pk},
    )
    assert response.status_code == 302
    assert _messages(response)[-1] == views.EDGE_REMOVED.format(
        source="check", label="not_found", target="done"
    )
    assert ("check", "not_found", "done") not in _graph(org_a, workflow)[1]


@pytest.mark.django_db
def test_a_transition_the_service_refuses_is_explained_next_to_its_field(operator, org_a):
    workflow = _draft(org_a)
    cases = [
        (
            {"source": "check", "target": "check"},
            "target",
            "Transition check -[success]-> check loops",
        ),
        (
            {"source": "check", "target": "done"},
            "label",
            "Transition check -[success]-> done already",
        ),
        ({"source": "check", "target": "ghost"}, "target", "Select a valid choice."),
        ({"source": "check", "target": "done", "label": ""}, "label", "This field is required."),
    ]
    for fields, field, start in cases:
        data = {"version": workflow.version, "label": "success", **fields}
        response = operator.post(_url("workflow_edge_add", workflow), data)
        assert response.status_code == 400, fields
        errors = response.context["edge_form"].errors
        assert list(errors) == [field] and errors[field][0].startswith(start), errors
    assert _reload(org_a, workflow).version == workflow.version


# -- validating and publishing -------------------------------------------------------------


@pytest.mark.django_db
def test_validating_marks_each_faulty_node_and_lists_its_problems_in_its_row(viewer, org_a):
    workflow = _draft(
        org_a,
        nodes=[
            entry("start"),
            decision("route", [("input.plan == 'gold'", "gold")], "basic"),
            general("orphan"),
            outcome("done"),
        ],
        edges=["start -> route -[gold]-> done"],
    )
    page = viewer.get(_url("workflow_validate", workflow))
    assert page.status_code == 200
    rows = {node["row"].key: node["problems"] for node in page.context["nodes"]}
    assert rows["route"] == [
        "route can end with label 'basic', but no transition leaves it with it.",
        "input.plan: 'plan' is not in required_data (fields: none).",
    ]
    assert rows["orphan"] == [
        "No path leads from the entry node to orphan.",
        "No path leads from orphan to an outcome node.",
        "orphan can end with label 'success', but no transition leaves it with it.",
    ]
    assert rows["start"] == rows["done"] == []
    strokes = _picture_keys(page)
    assert {key for key, stroke in strokes.items() if stroke == PROBLEM_COLOUR} == {
        "route",
        "orphan",
    }
    count = sum(map(len, rows.values()))
    assert _messages(page) == [views.PROBLEMS_FOUND.format(problems=f"{count} problems")]
    assert page.text.count('class="wf-has-problems"') == 2


@pytest.mark.django_db
def test_validating_a_sound_draft_says_it_can_be_published(viewer, org_a):
    page = viewer.get(_url("workflow_validate", _draft(org_a)))
    assert _messages(page) == [views.NO_PROBLEMS]
    assert PROBLEM_COLOUR not in set(_picture_keys(page).values())


@pytest.mark.django_db
def test_a_graph_without_an_entry_lists_its_problem_above_the_picture(viewer, org_a):
    workflow = _draft(org_a, nodes=[general("check"), outcome("done")], edges=["check -> done"])
    page = viewer.get(_url("workflow_validate", workflow))
    assert page.context["graph_problems"] == ["The workflow needs exactly one entry node."]
    assert 'data-testid="graph-problems"' in page.text


@pytest.mark.django_db
def test_publishing_names_the_new_revision(operator, org_a):
    workflow = _draft(org_a)
    response = operator.post(
        _url("workflow_publish", workflow), {"version": workflow.version, "comment": "First"}
    )
    assert response.status_code == 302
    assert _messages(response) == [views.PUBLISHED.format(revision=1, name="Eligibility")]
    with org_context(org_a.id):
        revision = WorkflowRevision.objects.get(workflow=workflow)
    assert (revision.revision_num, revision.comment) == (1, "First")
    assert _reload(org_a, workflow).status_id == WorkflowStatus.ACTIVE
    page = operator.get(response["Location"])
    assert page.context["latest_revision"] == 1


@pytest.mark.django_db
def test_a_refused_publish_lists_the_problems_per_node_and_writes_nothing(operator, org_a):
    workflow = _draft(org_a, edges=["start -> check"])
    response = operator.post(_url("workflow_publish", workflow), {"version": workflow.version})
    assert response.status_code == 400
    rows = {node["row"].key: node["problems"] for node in response.context["nodes"]}
    assert rows == {
        "start": ["No path leads from start to an outcome node."],
        "check": [
            "No path leads from check to an outcome node.",
            "check can end with label 'success', but no transition leaves it with it.",
        ],
        "done": ["No path leads from the entry node to done."],
    }
    assert _messages(response) == [views.NOT_PUBLISHED.format(problems="4 problems")]
    with org_context(org_a.id):
        assert not WorkflowRevision.objects.filter(workflow=workflow).exists()
    assert _reload(org_a, workflow).status_id == WorkflowStatus.DRAFT


@pytest.mark.django_db
def test_an_archived_workflow_is_read_only_in_the_editor(operator, org_a):
    workflow = _draft(org_a)
    with org_context(org_a.id):
        authoring.workflow_archive(workflow=workflow)
    page = operator.get(_url("workflow_editor", workflow))
    assert page.status_code == 200 and "is archived" in page.text
    assert _url("workflow_node_add", workflow) not in page.text
    response = operator.post(_url("workflow_node_add", workflow), _node_post(workflow, key="late"))
    assert response.status_code == 409
    assert response.context["notices"] == [authoring.WORKFLOW_ARCHIVED]
    assert authoring.WORKFLOW_ARCHIVED in response.text
    assert "late" not in _graph(org_a, workflow)[0]
