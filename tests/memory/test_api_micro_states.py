"""The V2 micro-states API: the two-organization checks, the store's decisions, search, retire,
outcome, and every bad input answered with a clear 4xx that writes nothing."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from memory.models import MicroState
from rcm.context import org_context
from tests.helpers import portal_page as page
from tests.workflows.factories import entry, general, outcome, workflow_build
from workflows.models import WorkflowNode

ACTION = {"tool": "click", "target": {"role": "button", "name": "Search"}}
URL = "/api/v2/micro-states/"


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


def create(client, name="patient_search", **body):
    body.setdefault("dom_snapshot", page(name))
    body.setdefault("action_json", ACTION)
    return post(client, URL, body)


def count(tenant) -> int:
    with org_context(tenant.id):
        return MicroState.objects.count()


@pytest.fixture
def state_a(api, org_a):
    response = create(api(org_a, "operator"))
    assert response.status_code == 201, response.json()
    return response.json()["state"]


# -- the two-organization checks ------------------------------------------------------------


def test_another_organizations_state_is_404(api, org_b, state_a):
    client = api(org_b, "org_admin")
    path = f"{URL}{state_a['id']}/"
    assert client.get(path).status_code == 404
    assert post(client, path + "retire/", {}).status_code == 404
    assert post(client, path + "outcome/", {"success": False}).status_code == 404
    assert post(client, path + "unretire/", {}).status_code == 404


def test_viewers_read_and_search_but_do_not_write(api, org_a, state_a):
    viewer = api(org_a, "viewer")
    assert viewer.get(URL).status_code == 200
    assert viewer.get(f"{URL}{state_a['id']}/").status_code == 200
    assert post(viewer, URL + "search/", {"text": "patient search"}).status_code == 200
    assert create(viewer).status_code == 403
    assert post(viewer, f"{URL}{state_a['id']}/retire/", {}).status_code == 403
    assert post(viewer, f"{URL}{state_a['id']}/outcome/", {"success": True}).status_code == 403


def test_a_member_lists_only_their_states_in_a_constant_number_of_queries(
    api, org_a, org_b, state_a
):
    create(api(org_b, "operator"), "claim_status")
    client = api(org_a, "viewer")
    with CaptureQueriesContext(connection) as one:
        body = client.get(URL).json()
    assert [row["id"] for row in body["results"]] == [state_a["id"]]
    assert "text_emb" not in body["results"][0]
    for name in ("login", "claim_status", "prior_authorization"):
        create(api(org_a, "operator"), name)
    with CaptureQueriesContext(connection) as four:
        assert len(client.get(URL).json()["results"]) == 4
    assert len(four) == len(one)


# -- storing ---------------------------------------------------------------------------------


def test_store_answers_the_dedup_decision(api, org_a, state_a):
    client = api(org_a, "operator")
    assert state_a["is_retired"] is False and state_a["embedder"].startswith("structural")
    again = create(client)
    assert again.status_code == 200
    assert again.json()["decision"] == "reused"
    assert again.json()["state"]["id"] == state_a["id"]
    repaired = create(
        client, action_json={"tool": "click", "target": {"text": "Find"}}, repaired=True
    )
    assert repaired.status_code == 201 and repaired.json()["decision"] == "replaced"
    old = client.get(f"{URL}{state_a['id']}/").json()
    assert old["is_retired"] and old["aliased_to_id"] == repaired.json()["state"]["id"]
    other = create(client, "claim_status")
    assert other.json()["decision"] == "inserted"


def test_store_masks_declared_and_patterned_phi(api, org_a):
    dom = (
        "<main><h1>Member</h1><p>Name: Ana Lima</p><p>SSN 123-45-6789</p>"
        "<p>Member ID: ZXQ987654321</p><p>ana.lima@example.com</p></main>"
    )
    response = create(api(org_a, "operator"), dom_snapshot=dom, phi_values=["Ana Lima"])
    stored = response.json()["state"]["dom_snapshot"]
    for value in ("Ana Lima", "123-45-6789", "ZXQ987654321", "ana.lima@example.com"):
        assert value not in stored
    assert "[SSN]" in stored and "[EMAIL]" in stored


def test_detail_gives_the_embedding_only_when_asked(api, org_a, state_a):
    client = api(org_a, "viewer")
    plain = client.get(f"{URL}{state_a['id']}/").json()
    assert "text_emb" not in plain
    full = client.get(f"{URL}{state_a['id']}/?include_embedding=true").json()
    assert len(full["text_emb"]) == 768
    listed = client.get(f"{URL}?include_embedding=true").json()["results"][0]
    assert len(listed["text_emb"]) == 768


def test_store_with_a_workflow_node_and_endpoint_of_the_organization(api, org_a, org_b):
    workflow, _ = workflow_build(
        org_id=org_a.id,
        nodes=[entry(), general("search"), outcome()],
        edges=["start->search->done"],
    )
    theirs, _ = workflow_build(
        org_id=org_b.id, nodes=[entry(), general("x"), outcome()], edges=["start->x->done"]
    )
    client = api(org_a, "operator")
    with org_context(org_a.id):
        node = WorkflowNode.objects.get(workflow=workflow, key="search")
        other_node = WorkflowNode.objects.get(workflow=workflow, key="done")
    response = create(client, workflow=str(workflow.pk), node=node.pk)
    assert response.status_code == 201
    assert response.json()["state"]["workflow_id"] == str(workflow.pk)
    assert response.json()["state"]["node_id"] == node.pk
    assert create(client, workflow=str(workflow.pk), node=other_node.pk).json()["decision"] == (
        "inserted"  # the same page at another step is that step's own state
    )
    refused = create(client, workflow=str(theirs.pk))
    assert refused.status_code == 400
    assert refused.json()["error"]["details"]["workflow"] == ["No workflow with this id."]
    with org_context(org_b.id):
        their_node = WorkflowNode.objects.get(workflow=theirs, key="x")
    refused = create(client, workflow=str(workflow.pk), node=their_node.pk)
    assert refused.json()["error"]["details"]["node"] == ["No node in this workflow with this id."]
    assert count(org_a) == 2


# -- searching -------------------------------------------------------------------------------


def test_search_by_dom_text_or_embedding(api, org_a, state_a):
    client = api(org_a, "viewer")
    by_dom = post(client, URL + "search/", {"dom_snapshot": page("patient_search"), "k": 5})
    assert by_dom.status_code == 200
    first = by_dom.json()["results"][0]
    assert first["state"]["id"] == state_a["id"] and first["similarity"] > 0.99
    by_text = post(client, URL + "search/", {"text": "Patient search member ID date of birth"})
    assert by_text.status_code == 200
    embedding = client.get(f"{URL}{state_a['id']}/?include_embedding=true").json()["text_emb"]
    # A caller's embedding meets only states stored with callers' embeddings.
    by_vector = post(client, URL + "search/", {"text_emb": embedding, "threshold": 0.5})
    assert by_vector.json()["results"] == []


def test_search_with_another_organizations_workflow_finds_nothing(api, org_a, org_b, state_a):
    theirs, _ = workflow_build(
        org_id=org_b.id, nodes=[entry(), general("x"), outcome()], edges=["start->x->done"]
    )
    response = post(
        api(org_a, "viewer"),
        URL + "search/",
        {"dom_snapshot": page("patient_search"), "workflow": str(theirs.pk)},
    )
    assert response.status_code == 200 and response.json()["results"] == []


# -- retire and outcome ----------------------------------------------------------------------


def test_retire_and_outcome(api, org_a, state_a):
    client = api(org_a, "operator")
    path = f"{URL}{state_a['id']}/"
    scored = post(client, path + "outcome/", {"success": False})
    assert scored.status_code == 200 and scored.json()["success_ema"] == pytest.approx(0.8)
    retired = post(client, path + "retire/", {})
    assert retired.status_code == 200 and retired.json()["is_retired"] is True
    found = post(client, URL + "search/", {"dom_snapshot": page("patient_search")}).json()
    assert found["results"] == []
    assert post(client, path + "unretire/", {}).json()["is_retired"] is False


def test_retire_with_an_alias_of_another_organization_is_400(api, org_a, org_b, state_a):
    theirs = create(api(org_b, "operator"), "login").json()["state"]
    response = post(
        api(org_a, "operator"), f"{URL}{state_a['id']}/retire/", {"aliased_to": theirs["id"]}
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["aliased_to"] == ["No state with this id."]


# -- bad input: a clear 4xx, nothing written -------------------------------------------------

BAD_CREATES = [
    ({"text_emb": [0.1] * 767}, "text_emb", "exactly 768 numbers; this one has 767"),
    ({"text_emb": [0.1] * 769}, "text_emb", "exactly 768 numbers; this one has 769"),
    ({"text_emb": ["NaN"] + [0.1] * 767}, "text_emb", "item 0 is NaN"),
    ({"text_emb": [0.1] * 767 + ["Infinity"]}, "text_emb", "item 767 is Infinity"),
    ({"text_emb": [0.0] * 768}, "text_emb", "all zeros"),
    ({"dom_snapshot": ""}, "dom_snapshot", "The DOM snapshot is empty."),
    ({"dom_snapshot": "   "}, "dom_snapshot", "The DOM snapshot is empty."),
    ({"action_json": "click"}, "action_json", "Expected a dictionary"),
    ({"mini_score": 1.5}, "mini_score", "less than or equal to 1"),
    ({"node": 5}, "node", "A node is given with its workflow."),
    ({"endpoint": 999999}, "endpoint", "No endpoint with this id."),
    ({"colour": "red"}, "colour", "Unknown field."),
]


@pytest.mark.parametrize(("body", "field", "message"), BAD_CREATES)
def test_bad_creates_are_400_and_write_nothing(api, org_a, body, field, message):
    response = create(api(org_a, "operator"), **body)
    assert response.status_code == 400, response.json()
    details = response.json()["error"]["details"]
    assert field in details and message in " ".join(map(str, details[field])), details
    assert count(org_a) == 0


def test_nan_and_infinity_as_json_literals_are_refused(api, org_a):
    for literal in ("NaN", "Infinity", "-Infinity"):
        body = json.dumps({"dom_snapshot": "<p>x</p>", "action_json": ACTION})
        body = body[:-1] + ', "text_emb": [' + ", ".join(["0.1"] * 767 + [literal]) + "]}"
        response = api(org_a, "operator").post(URL, body, content_type="application/json")
        assert response.status_code == 400, literal
    assert count(org_a) == 0


def test_a_dom_over_2_mb_is_413_and_writes_nothing(api, org_a):
    dom = "<div>" + "x" * (2 * 1024 * 1024) + "</div>"
    response = create(api(org_a, "operator"), dom_snapshot=dom)
    assert response.status_code == 413
    assert "the largest accepted is 2097152 bytes" in response.json()["error"]["message"]
    assert count(org_a) == 0
    searched = post(api(org_a, "viewer"), URL + "search/", {"dom_snapshot": dom})
    assert searched.status_code == 413


BAD_SEARCHES = [
    ({"text": "x", "k": 0}, "k", "greater than or equal to 1"),
    ({"text": "x", "k": 101}, "k", "less than or equal to 100"),
    ({"text": "x", "threshold": -0.1}, "threshold", "greater than or equal to 0"),
    ({"text": "x", "threshold": 1.1}, "threshold", "less than or equal to 1"),
    ({"text_emb": [0.1] * 10}, "text_emb", "exactly 768 numbers; this one has 10"),
    ({}, "non_field_errors", "exactly one of dom_snapshot, text or text_emb"),
    ({"text": "x", "dom_snapshot": "<p/>"}, "non_field_errors", "exactly one"),
    ({"text": "   "}, "text", "may not be blank"),
    ({"dom_snapshot": ""}, "dom_snapshot", "The DOM snapshot is empty."),
]


@pytest.mark.parametrize(("body", "field", "message"), BAD_SEARCHES)
def test_bad_searches_are_400(api, org_a, body, field, message):
    response = post(api(org_a, "viewer"), URL + "search/", body)
    assert response.status_code == 400, response.json()
    details = response.json()["error"]["details"]
    assert field in details and message in " ".join(map(str, details[field])), details


def test_bad_outcome_and_list_filters_are_400(api, org_a, state_a):
    client = api(org_a, "operator")
    response = post(client, f"{URL}{state_a['id']}/outcome/", {"success": "perhaps"})
    assert response.status_code == 400
    assert post(client, f"{URL}{state_a['id']}/outcome/", {}).status_code == 400
    assert client.get(URL + "?workflow=nope").status_code == 400
    assert client.get(URL + "?page_size=0").status_code == 400
    with org_context(org_a.id):
        assert MicroState.objects.get().success_count == 0
