"""Workflow authoring through the API: workflows, the draft graph, validation, publishing,
revisions and status; the bad input each must refuse without writing anything; optimistic
locking; what the database itself refuses; and the two-organization security checks."""

from __future__ import annotations

import threading

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from rcm.context import org_context
from rcm.errors import Conflict
from tenants import services as tenant_services
from tenants.models import ChannelType
from tests.helpers import assert_not_found as _assert_not_found
from workflows.models import TaskType, Workflow, WorkflowNode, WorkflowRevision, WorkflowTransition
from workflows.services import authoring as services
from workflows.services.authoring import STALE_VERSION, WORKFLOW_ARCHIVED, WORKFLOW_PUBLISHED

from .factories import decision, entry, general, outcome, transitions, workflow_build

WORKFLOWS = "/api/v2/workflows/"
SEARCH = {
    "url": "https://portal.test/members/{{ input.member_id }}",
    "status_labels": {"404": "not_found"},
}
NODES = [
    entry(),
    general("search", "http", SEARCH, retry_policy={"maximum_attempts": 3}, timeout_s=60),
    decision("route", [("nodes.search.output.body.active", "active")], "inactive"),
    outcome("covered"),
    outcome("not_covered", result="failure"),
]
EDGES = [
    "start -> search -> route -[active]-> covered",
    "route -[inactive]-> not_covered",
    "search -[not_found]-> not_covered",
    "search -[error]-> not_covered",
]


def url(workflow, suffix: str = "") -> str:
    workflow_id = workflow["id"] if isinstance(workflow, dict) else workflow.pk
    return f"{WORKFLOWS}{workflow_id}/{suffix}"


def graph_body(version: int, nodes=NODES, edges=EDGES, **extra) -> dict:
    return {"version": version, "nodes": nodes, "transitions": transitions(edges), **extra}


def draft(tenant, nodes=NODES, edges=EDGES, **options) -> Workflow:
    workflow, _ = workflow_build(
        org_id=tenant.id,
        nodes=nodes,
        edges=edges,
        required_data=["member_id"],
        publish=False,
        created_by=tenant["operator"],
        **options,
    )
    return workflow


def stored(tenant, workflow) -> Workflow:
    with org_context(tenant.id):
        return Workflow.objects.get(pk=workflow.pk)


def node_keys(tenant, workflow) -> list[str]:
    workflow_id = workflow["id"] if isinstance(workflow, dict) else workflow.pk
    with org_context(tenant.id):
        nodes = WorkflowNode.objects.filter(workflow_id=workflow_id).order_by("id")
        return list(nodes.values_list("key", flat=True))


def problem_nodes(response, code: str) -> list:
    return [p["node"] for p in response.json()["error"]["details"]["problems"] if p["code"] == code]


# -- the happy path ------------------------------------------------------------------------


@pytest.mark.django_db
def test_operator_authors_validates_and_publishes_a_workflow(api, org_a):
    client = api(org_a, "operator")
    response = client.post(
        WORKFLOWS,
        {"name": "Eligibility", "required_data": ["member_id"], "task_type": "eligibility/check"},
        "json",
    )
    assert response.status_code == 201, response.json()
    created = response.json()
    assert (created["status"], created["version"], created["latest_revision_num"]) == (
        "draft",
        1,
        None,
    )
    assert created["task_type"] == "eligibility/check"
    assert created["created_by_id"] == str(org_a["operator"].pk)

    response = client.put(url(created, "graph/"), graph_body(1), "json")
    assert response.status_code == 200, response.json()
    graph = response.json()
    assert graph["version"] == 2
    assert [node["key"] for node in graph["nodes"]] == [node["key"] for node in NODES]
    assert {(t["from"], t["to"], t["label"]) for t in graph["transitions"]} == {
        (t["from"], t["to"], t["label"]) for t in transitions(EDGES)
    }
    assert client.get(url(created, "graph/")).json() == graph

    response = client.post(url(created, "validate/"))
    assert response.json() == {"valid": True, "problems": []}

    response = client.post(url(created, "publish/"), {"comment": "first cut"}, "json")
    assert response.status_code == 201, response.json()
    assert response.json()["revision_num"] == 1
    assert response.json()["created_by_id"] == str(org_a["operator"].pk)

    detail = client.get(url(created)).json()
    assert (detail["status"], detail["latest_revision_num"]) == ("active", 1)
    assert detail["published_at"] is not None
    assert len(detail["nodes"]) == 5 and len(detail["transitions"]) == 6

    revisions = client.get(url(created, "revisions/")).json()["results"]
    assert [(r["revision_num"], r["comment"]) for r in revisions] == [(1, "first cut")]
    snapshot = client.get(url(created, "revisions/1/")).json()["graph"]
    assert snapshot["required_data"] == ["member_id"]
    assert snapshot["task_type_id"] == created["task_type_id"]
    search = next(node for node in snapshot["nodes"] if node["key"] == "search")
    assert search["retry_policy"] == {"maximum_attempts": 3} and search["timeout_s"] == 60
    assert {"from": "search", "to": "not_covered", "label": "error"} in [
        {k: t[k] for k in ("from", "to", "label")} for t in snapshot["transitions"]
    ]


@pytest.mark.django_db
def test_nodes_and_transitions_one_at_a_time_each_move_the_version(api, org_a):
    client = api(org_a, "operator")
    workflow = client.post(WORKFLOWS, {"name": "Step by step"}, "json").json()
    nodes = url(workflow, "nodes/")

    response = client.post(nodes, {"version": 1, "key": "start", "node_type": "entry"}, "json")
    assert response.status_code == 201, response.json()
    assert response.json()["workflow_version"] == 2
    response = client.post(nodes, {"version": 2, "key": "pick", "node_type": "decision"}, "json")
    pick = response.json()
    assert (pick["kind"], pick["workflow_version"]) == ("decision", 3)  # the default kind
    response = client.patch(
        f"{nodes}{pick['id']}/",
        {"version": 3, "config": {"conditions": [{"when": "1", "label": "one"}], "default": "x"}},
        "json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["workflow_version"] == 4

    edges = url(workflow, "transitions/")
    response = client.post(edges, {"version": 4, "from": "start", "to": "pick"}, "json")
    assert response.status_code == 201, response.json()
    edge = response.json()
    assert (edge["from"], edge["to"], edge["label"], edge["freq"]) == (
        "start",
        "pick",
        "success",
        1,
    )
    assert edge["workflow_version"] == 5
    assert client.get(edges).json()["results"][0]["id"] == edge["id"]

    response = client.delete(f"{edges}{edge['id']}/?version=5")
    assert response.json() == {"workflow_version": 6}
    response = client.delete(f"{nodes}{pick['id']}/?version=6")
    assert response.json() == {"workflow_version": 7}
    assert node_keys(org_a, workflow) == ["start"]
    assert client.get(url(workflow)).json()["version"] == 7


@pytest.mark.django_db
def test_a_node_renamed_keeps_its_transitions(api, org_a):
    workflow = draft(org_a)
    client = api(org_a, "operator")
    with org_context(org_a.id):
        search = WorkflowNode.objects.get(workflow=workflow, key="search")
    response = client.patch(
        url(workflow, f"nodes/{search.pk}/"), {"version": workflow.version, "key": "lookup"}, "json"
    )
    assert response.status_code == 200, response.json()
    edges = client.get(url(workflow, "transitions/"), {"page_size": 50}).json()["results"]
    assert {"lookup"} <= {edge["from"] for edge in edges}


@pytest.mark.django_db
def test_the_graph_put_keeps_the_rows_that_stay(api, org_a):
    workflow = draft(org_a)
    with org_context(org_a.id):
        before = dict(WorkflowNode.objects.filter(workflow=workflow).values_list("key", "id"))
        kept = WorkflowTransition.objects.get(workflow=workflow, action_label="not_found")
        WorkflowTransition.objects.filter(pk=kept.pk).update(freq=42)
    nodes = [node for node in NODES if node["key"] != "covered"] + [outcome("eligible")]
    edges = [edge.replace("covered", "eligible") for edge in EDGES[:1]] + EDGES[1:]
    response = api(org_a, "operator").put(
        url(workflow, "graph/"), graph_body(workflow.version, nodes, edges), "json"
    )
    assert response.status_code == 200, response.json()
    after = {node["key"]: node["id"] for node in response.json()["nodes"]}
    assert after["search"] == before["search"] and after["route"] == before["route"]
    assert "covered" not in after and after["eligible"] not in before.values()
    freq = {t["label"]: t["freq"] for t in response.json()["transitions"]}
    assert freq["not_found"] == 42


@pytest.mark.django_db
def test_workflow_patch_changes_the_draft_fields(api, org_a):
    workflow = draft(org_a)
    with org_context(org_a.id):
        endpoint = tenant_services.endpoint_create(
            org_id=org_a.id, name="UHC", channel_type=ChannelType.objects.get(code="uhc-portal")
        )
    task_type = TaskType.objects.get(domain="claim", action="check_status")
    response = api(org_a, "operator").patch(
        url(workflow),
        {
            "version": workflow.version,
            "name": "Claim status",
            "description": "276/277 through UHC",
            "required_data": ["member_id", "claim_number"],
            "task_type": str(task_type.pk),
            "endpoint_id": endpoint.pk,
        },
        "json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["name"], body["task_type"], body["endpoint_id"]) == (
        "Claim status",
        "claim/check_status",
        endpoint.pk,
    )
    assert body["required_data"] == ["member_id", "claim_number"]
    assert body["version"] == workflow.version + 1
    assert stored(org_a, workflow).draft_updated_at > workflow.draft_updated_at


@pytest.mark.django_db
def test_the_list_filters_by_status(api, org_a):
    draft(org_a, name="Still a draft")
    workflow_build(org_id=org_a.id, nodes=NODES, edges=EDGES, required_data=["member_id"])
    client = api(org_a, "viewer")
    active = client.get(WORKFLOWS, {"status": "active"}).json()["results"]
    assert [w["status"] for w in active] == ["active"]
    assert len(client.get(WORKFLOWS).json()["results"]) == 2
    response = client.get(WORKFLOWS, {"status": "sleeping"})
    assert response.status_code == 400 and "status" in response.json()["error"]["details"]


# -- creating: names, task types, endpoints, required data ---------------------------------


@pytest.mark.django_db
def test_a_name_is_unique_within_an_organization_only(api, org_a, org_b):
    assert api(org_a, "operator").post(WORKFLOWS, {"name": "Elig"}, "json").status_code == 201
    response = api(org_a, "operator").post(WORKFLOWS, {"name": "Elig"}, "json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "workflow_exists"
    assert api(org_b, "operator").post(WORKFLOWS, {"name": "Elig"}, "json").status_code == 201


@pytest.mark.django_db
def test_another_orgs_endpoint_is_as_unknown_as_a_missing_one(api, org_a, org_b):
    with org_context(org_b.id):
        theirs = tenant_services.endpoint_create(
            org_id=org_b.id, name="UHC", channel_type=ChannelType.objects.get(code="uhc-portal")
        )
    client = api(org_a, "operator")
    bodies = [
        client.post(WORKFLOWS, {"name": "W", "endpoint_id": endpoint_id}, "json").json()
        for endpoint_id in (theirs.pk, 999_999)
    ]
    assert bodies[0] == bodies[1]
    assert bodies[0]["error"]["code"] == "unknown_endpoint"
    with org_context(org_a.id):
        assert not Workflow.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "W", "task_type": "eligibility/teleport"}, "task_type"),
        ({"name": "W", "task_type": "00000000-0000-0000-0000-000000000000"}, "task_type"),
        ({"name": "W", "required_data": ["member_id", "member_id"]}, "required_data"),
        ({"name": "W", "required_data": ["member id"]}, "required_data"),
        ({"name": "W", "required_data": "member_id"}, "required_data"),
        ({"name": "W", "org_id": "x"}, "org_id"),
        ({"name": "W", "status": "active"}, "status"),
    ],
)
def test_bad_workflow_input_is_400_and_saves_nothing(api, org_a, body, field):
    response = api(org_a, "operator").post(WORKFLOWS, body, "json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["details"]
    with org_context(org_a.id):
        assert not Workflow.objects.exists()


# -- bad graphs: 400 naming the node, nothing saved ----------------------------------------


def _assert_graph_unchanged(tenant, workflow) -> None:
    after = stored(tenant, workflow)
    assert after.version == workflow.version
    assert node_keys(tenant, workflow) == [node["key"] for node in NODES]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("nodes", "edges", "code", "node"),
    [
        (NODES, [*EDGES, "covered -> nowhere"], "dangling_transition", "nowhere"),
        ([*NODES, general("search")], EDGES, "duplicate_key", "search"),
        ([*NODES, general("magic", "teleport")], EDGES, "unknown_kind", "magic"),
        ([*NODES, {"key": "x", "node_type": "junction"}], EDGES, "unknown_node_type", "x"),
        (NODES, [*EDGES, "search -[retry]-> search"], "self_loop", "search"),
        ([*NODES, general("slow", timeout_s=99_999)], EDGES, "invalid_timeout", "slow"),
        ([*NODES, {**outcome("end"), "kind": "noop"}], EDGES, "kind_not_allowed", "end"),
    ],
)
def test_a_structurally_bad_graph_put_is_400_naming_the_node(api, org_a, nodes, edges, code, node):
    workflow = draft(org_a)
    response = api(org_a, "operator").put(
        url(workflow, "graph/"), graph_body(workflow.version, nodes, edges), "json"
    )
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "invalid_graph"
    assert problem_nodes(response, code) == [node]
    _assert_graph_unchanged(org_a, workflow)


@pytest.mark.django_db
def test_a_transition_to_another_workflows_node_is_dangling(api, org_a):
    workflow = draft(org_a)
    other = draft(
        org_a,
        nodes=[entry(), general("elsewhere"), outcome()],
        edges=["start -> elsewhere -> done"],
        name="Other",
    )
    client = api(org_a, "operator")
    response = client.post(
        url(workflow, "transitions/"),
        {"version": workflow.version, "from": "search", "to": "elsewhere"},
        "json",
    )
    assert response.status_code == 400
    assert problem_nodes(response, "dangling_transition") == ["elsewhere"]
    response = client.put(
        url(workflow, "graph/"),
        graph_body(workflow.version, edges=[*EDGES, "search -> elsewhere"]),
        "json",
    )
    assert problem_nodes(response, "dangling_transition") == ["elsewhere"]
    _assert_graph_unchanged(org_a, workflow)
    assert node_keys(org_a, other) == ["start", "elsewhere", "done"]


@pytest.mark.django_db
def test_an_unknown_kind_is_refused_on_a_single_node_too(api, org_a):
    workflow = draft(org_a)
    response = api(org_a, "operator").post(
        url(workflow, "nodes/"),
        {"version": workflow.version, "key": "beam", "node_type": "general", "kind": "teleport"},
        "json",
    )
    assert response.status_code == 400
    assert problem_nodes(response, "unknown_kind") == ["beam"]
    _assert_graph_unchanged(org_a, workflow)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("nodes", "edges", "code", "named"),
    [
        (NODES, [*EDGES, "route -[error]-> not_covered"], "unknown_label", ["route"]),
        (
            [*NODES, general("login")],
            [*EDGES, "search -[error]-> login -> search"],
            "cycle",
            ["search"],
        ),
        (
            [*NODES, entry("again")],
            [*EDGES, "again -> search"],
            "multiple_entries",
            ["start", "again"],
        ),
        ([*NODES, general("island")], [*EDGES, "island -> covered"], "unreachable", ["island"]),
        (
            [node if node["key"] != "search" else general("search", "http", {}) for node in NODES],
            EDGES,
            "invalid_config",
            ["search"],
        ),
        (  # a worker once grew to 1.6 GB rendering this, before its length was checked
            [
                node
                if node["key"] != "search"
                else general("search", "http", {**SEARCH, "body": {"q": "{{ 'a' * 400000000 }}"}})
                for node in NODES
            ],
            EDGES,
            "invalid_config",
            ["search"],
        ),
    ],
)
def test_a_graph_that_cannot_be_published_is_saved_but_refused_on_publish(
    api, org_a, nodes, edges, code, named
):
    workflow = draft(org_a, nodes=nodes, edges=edges)  # a draft may be incomplete or wrong
    client = api(org_a, "operator")
    validation = client.post(url(workflow, "validate/")).json()
    assert validation["valid"] is False
    assert [p["node"] for p in validation["problems"] if p["code"] == code] == named

    response = client.post(url(workflow, "publish/"), {}, "json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_publishable"
    assert problem_nodes(response, code) == named
    after = stored(org_a, workflow)
    assert (after.status_id, after.published_at, after.version) == ("draft", None, workflow.version)
    with org_context(org_a.id):
        assert not WorkflowRevision.objects.exists()


@pytest.mark.django_db
def test_the_cycle_message_names_the_loop_and_points_to_retry_policies(api, org_a):
    workflow = draft(
        org_a, nodes=[*NODES, general("login")], edges=[*EDGES, "search -[error]-> login -> search"]
    )
    problems = api(org_a, "operator").post(url(workflow, "validate/")).json()["problems"]
    cycle = next(p for p in problems if p["code"] == "cycle")
    assert "search -> login -> search" in cycle["message"]
    assert "retry_policy" in cycle["message"]


@pytest.mark.django_db
def test_validate_reports_every_problem_and_a_viewer_may_ask(api, org_a):
    workflow = draft(
        org_a,
        nodes=[entry(), entry("b"), general("c", "http", {}), general("d", "")],
        edges=["start -> c", "b -> d"],
    )
    response = api(org_a, "viewer").post(url(workflow, "validate/"))
    assert response.status_code == 200
    codes = {p["code"] for p in response.json()["problems"]}
    assert {"multiple_entries", "invalid_config", "missing_kind", "no_outcome"} <= codes
    assert {p["node"] for p in response.json()["problems"]} == {"start", "b", "c", "d", None}


# -- optimistic locking --------------------------------------------------------------------


@pytest.mark.django_db
def test_a_stale_version_is_409_with_the_current_one_and_saves_nothing(api, org_a):
    workflow = draft(org_a)
    client = api(org_a, "operator")
    stale = workflow.version - 1
    with org_context(org_a.id):
        search = WorkflowNode.objects.get(workflow=workflow, key="search")
    attempts = [
        client.put(url(workflow, "graph/"), graph_body(stale, NODES[:2], EDGES[:0]), "json"),
        client.patch(url(workflow), {"version": stale, "name": "Renamed"}, "json"),
        client.post(
            url(workflow, "nodes/"), {"version": stale, "key": "x", "node_type": "general"}, "json"
        ),
        client.patch(
            url(workflow, f"nodes/{search.pk}/"), {"version": stale, "timeout_s": 5}, "json"
        ),
        client.delete(url(workflow, f"nodes/{search.pk}/") + f"?version={stale}"),
        client.post(
            url(workflow, "transitions/"),
            {"version": stale, "from": "start", "to": "covered"},
            "json",
        ),
        client.post(url(workflow, "publish/"), {"version": stale}, "json"),
    ]
    for response in attempts:
        assert response.status_code == 409, response.json()
        assert response.json()["error"] == {
            "code": "stale_version",
            "message": STALE_VERSION,
            "details": {"current_version": workflow.version, "given_version": stale},
        }
    _assert_graph_unchanged(org_a, workflow)
    assert stored(org_a, workflow).name == workflow.name


@pytest.mark.django_db
def test_a_draft_change_without_a_version_is_400(api, org_a):
    workflow = draft(org_a)
    client = api(org_a, "operator")
    response = client.put(url(workflow, "graph/"), {"nodes": [], "transitions": []}, "json")
    assert response.status_code == 400 and "version" in response.json()["error"]["details"]
    with org_context(org_a.id):
        search = WorkflowNode.objects.get(workflow=workflow, key="search")
    response = client.delete(url(workflow, f"nodes/{search.pk}/"))
    assert response.status_code == 400 and "version" in response.json()["error"]["details"]
    _assert_graph_unchanged(org_a, workflow)


@pytest.mark.django_db
def test_of_two_editors_reading_one_version_the_second_to_save_loses(api, org_a):
    workflow = draft(org_a)
    alice, bob = api(org_a, "operator"), api(org_a, "org_admin")
    version = alice.get(url(workflow)).json()["version"]
    assert bob.get(url(workflow)).json()["version"] == version
    assert alice.put(url(workflow, "graph/"), graph_body(version), "json").status_code == 200
    response = bob.patch(url(workflow), {"version": version, "name": "Bob's"}, "json")
    assert response.status_code == 409
    assert response.json()["error"]["details"]["current_version"] == version + 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_edits_of_one_version_the_second_waits_and_loses(org_a):
    workflow = draft(org_a)
    version = workflow.version
    first_claimed, release = threading.Event(), threading.Event()
    results = {}

    def edit(name: str, hold: bool) -> None:
        try:
            with org_context(org_a.id), transaction.atomic():
                services.workflow_update(
                    workflow=Workflow.objects.get(pk=workflow.pk), version=version, name=name
                )
                if hold:
                    first_claimed.set()
                    release.wait(10)
            results[name] = "saved"
        except Conflict as exc:
            results[name] = exc.code
        finally:
            connection.close()

    first = threading.Thread(target=edit, args=("first", True))
    first.start()
    assert first_claimed.wait(10)
    second = threading.Thread(target=edit, args=("second", False))
    second.start()
    second.join(0.5)
    assert second.is_alive()  # waiting for the first edit's row lock, not reading stale data
    release.set()
    first.join(10)
    second.join(10)
    assert results == {"first": "saved", "second": "stale_version"}
    after = stored(org_a, workflow)
    assert (after.name, after.version) == ("first", version + 1)


# -- publishing, revisions, status ---------------------------------------------------------


@pytest.mark.django_db
def test_editing_the_draft_after_publishing_leaves_the_revision_as_it_was(api, org_a):
    workflow, revision = workflow_build(
        org_id=org_a.id, nodes=NODES, edges=EDGES, required_data=["member_id"]
    )
    frozen = revision.graph
    client = api(org_a, "operator")
    version = client.get(url(workflow)).json()["version"]
    edited, edges = [general("audit"), *NODES], [*EDGES, "start -> audit -> covered"]
    response = client.put(
        url(workflow, "graph/"), graph_body(version, edited, edges, required_data=[]), "json"
    )
    assert response.status_code == 200
    assert client.get(url(workflow, "revisions/1/")).json()["graph"] == frozen
    assert client.get(url(workflow)).json()["status"] == "active"  # runs still use r1

    response = client.post(url(workflow, "publish/"), {"version": version + 1}, "json")
    assert response.status_code == 400  # required_data no longer has member_id
    assert problem_nodes(response, "unknown_input_field") == ["search"]
    response = client.put(
        url(workflow, "graph/"),
        graph_body(version + 1, edited, edges, required_data=["member_id"]),
        "json",
    )
    assert response.status_code == 200
    assert client.post(url(workflow, "publish/"), {}, "json").json()["revision_num"] == 2
    nums = [r["revision_num"] for r in client.get(url(workflow, "revisions/")).json()["results"]]
    assert nums == [2, 1]
    assert client.get(url(workflow, "revisions/1/")).json()["graph"] == frozen
    assert client.get(url(workflow, "revisions/3/")).status_code == 404


@pytest.mark.django_db
def test_suspend_and_archive(api, org_a):
    workflow, _ = workflow_build(
        org_id=org_a.id, nodes=NODES, edges=EDGES, required_data=["member_id"]
    )
    client = api(org_a, "operator")
    response = client.post(url(workflow, "suspend/"))
    assert response.status_code == 200 and response.json()["status"] == "suspended"
    response = client.post(url(workflow, "suspend/"))
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_active"
    assert client.post(url(workflow, "publish/"), {}, "json").status_code == 201
    assert client.get(url(workflow)).json()["status"] == "active"

    response = client.post(url(workflow, "archive/"))
    assert response.status_code == 200 and response.json()["status"] == "archived"
    version = response.json()["version"]
    refused = [
        client.patch(url(workflow), {"version": version, "name": "Again"}, "json"),
        client.put(url(workflow, "graph/"), graph_body(version), "json"),
        client.post(url(workflow, "publish/"), {}, "json"),
        client.post(
            url(workflow, "nodes/"),
            {"version": version, "key": "x", "node_type": "general"},
            "json",
        ),
    ]
    for response in refused:
        assert response.status_code == 409
        assert response.json()["error"]["message"] == WORKFLOW_ARCHIVED
    assert stored(org_a, workflow).version == version


@pytest.mark.django_db
def test_only_a_never_published_workflow_can_be_deleted(api, org_a):
    client = api(org_a, "operator")
    unpublished = draft(org_a)
    assert client.delete(url(unpublished)).status_code == 204
    published, _ = workflow_build(
        org_id=org_a.id, nodes=NODES, edges=EDGES, required_data=["member_id"]
    )
    response = client.delete(url(published))
    assert response.status_code == 409
    assert response.json()["error"]["message"] == WORKFLOW_PUBLISHED
    with org_context(org_a.id):
        assert list(Workflow.objects.values_list("pk", flat=True)) == [published.pk]


# -- what the database itself refuses ------------------------------------------------------


@pytest.mark.django_db
def test_the_database_refuses_a_transition_between_two_workflows(org_a):
    one, two = draft(org_a), draft(org_a, name="Two")
    with org_context(org_a.id):
        theirs = WorkflowNode.objects.get(workflow=one, key="search")
        ours = WorkflowNode.objects.get(workflow=two, key="covered")
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO workflow_transition (org_id, workflow_id, from_node, to_node, "
                "action_label, freq, created_at) VALUES (%s, %s, %s, %s, 'success', 1, now())",
                [org_a.id, two.pk, theirs.pk, ours.pk],
            )
        assert not WorkflowTransition.objects.filter(from_node=theirs, to_node=ours).exists()


@pytest.mark.django_db
def test_the_database_refuses_to_update_a_revision(org_a):
    _, revision = workflow_build(
        org_id=org_a.id, nodes=NODES, edges=EDGES, required_data=["member_id"]
    )
    with org_context(org_a.id):
        with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
            WorkflowRevision.objects.filter(pk=revision.pk).update(graph={"nodes": []})
        assert WorkflowRevision.objects.get(pk=revision.pk).graph == revision.graph


# -- two organizations ---------------------------------------------------------------------


@pytest.fixture
def theirs(org_b):
    """A published workflow of org B, plus the ids of one of its nodes and transitions."""
    workflow, _ = workflow_build(
        org_id=org_b.id, nodes=NODES, edges=EDGES, required_data=["member_id"], name="Theirs"
    )
    with org_context(org_b.id):
        node = WorkflowNode.objects.get(workflow=workflow, key="search")
        edge = WorkflowTransition.objects.filter(workflow=workflow).first()
    return workflow, node.pk, edge.pk


def _urls(workflow, node_id, transition_id) -> list[str]:
    return [
        url(workflow),
        url(workflow, "nodes/"),
        url(workflow, f"nodes/{node_id}/"),
        url(workflow, "transitions/"),
        url(workflow, f"transitions/{transition_id}/"),
        url(workflow, "graph/"),
        url(workflow, "revisions/"),
        url(workflow, "revisions/1/"),
    ]


@pytest.mark.django_db
def test_another_orgs_workflow_is_404_and_unchanged(api, org_a, org_b, theirs):
    workflow, node_id, transition_id = theirs
    client = api(org_a, "org_admin")
    for target in _urls(*theirs):
        _assert_not_found(client.get(target))
    version = stored(org_b, workflow).version
    writes = [
        client.patch(url(workflow), {"version": version, "name": "Stolen"}, "json"),
        client.delete(url(workflow)),
        client.put(url(workflow, "graph/"), graph_body(version, NODES[:1], []), "json"),
        client.post(
            url(workflow, "nodes/"),
            {"version": version, "key": "x", "node_type": "general"},
            "json",
        ),
        client.patch(
            url(workflow, f"nodes/{node_id}/"), {"version": version, "kind": "wait"}, "json"
        ),
        client.delete(url(workflow, f"nodes/{node_id}/") + f"?version={version}"),
        client.post(
            url(workflow, "transitions/"),
            {"version": version, "from": "start", "to": "covered"},
            "json",
        ),
        client.delete(url(workflow, f"transitions/{transition_id}/") + f"?version={version}"),
        client.post(url(workflow, "validate/")),
        client.post(url(workflow, "publish/"), {}, "json"),
        client.post(url(workflow, "suspend/")),
        client.post(url(workflow, "archive/")),
    ]
    for response in writes:
        _assert_not_found(response)
    after = stored(org_b, workflow)
    assert (after.name, after.status_id, after.version) == ("Theirs", "active", version)
    assert node_keys(org_b, workflow) == [node["key"] for node in NODES]
    with org_context(org_b.id):
        assert WorkflowRevision.objects.filter(workflow=workflow).count() == 1
        assert WorkflowTransition.objects.filter(workflow=workflow).count() == 6


@pytest.mark.django_db
def test_ids_of_nodes_in_another_workflow_are_404(api, org_a):
    one, two = draft(org_a), draft(org_a, name="Two")
    with org_context(org_a.id):
        node = WorkflowNode.objects.get(workflow=one, key="search")
    client = api(org_a, "operator")
    _assert_not_found(client.get(url(two, f"nodes/{node.pk}/")))
    _assert_not_found(
        client.patch(
            url(two, f"nodes/{node.pk}/"), {"version": two.version, "kind": "wait"}, "json"
        )
    )
    _assert_not_found(client.get(f"{WORKFLOWS}00000000-0000-0000-0000-000000000000/"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("post", None, {"name": "Mine"}),
        ("patch", "", {"version": 1, "name": "Mine"}),
        ("delete", "", None),
        ("post", "nodes/", {"version": 1, "key": "x", "node_type": "general"}),
        ("post", "transitions/", {"version": 1, "from": "start", "to": "covered"}),
        ("put", "graph/", {"version": 1, "nodes": [], "transitions": []}),
        ("post", "publish/", {}),
        ("post", "suspend/", None),
        ("post", "archive/", None),
    ],
)
def test_a_viewer_cannot_write(api, org_a, method, suffix, body):
    workflow = draft(org_a)
    target = WORKFLOWS if suffix is None else url(workflow, suffix)
    response = getattr(api(org_a, "viewer"), method)(target, body, "json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    after = stored(org_a, workflow)
    assert (after.version, after.status_id) == (workflow.version, "draft")


ROWS = {None: 4, "nodes/": 5, "transitions/": 6, "revisions/": 4}
