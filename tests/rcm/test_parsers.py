"""The one JSON parser: a NUL character, a lone surrogate or nesting past 64 levels is a 400
naming the problem, for every body (these fields reached PostgreSQL, which refused them with
a 500) and for JSON that comes as form text or is handed to a serializer in code."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework import serializers

from memory.models import MicroState
from rcm.api.parsers import (
    JSON_HAS_NUL,
    JSON_HAS_SURROGATE,
    JSON_TOO_DEEP,
    MAX_JSON_DEPTH,
    JSONInputError,
    json_loads,
    json_problem,
)
from rcm.api.serializers import JSONField
from rcm.context import org_context
from tenants.models import Endpoint
from tests.workflows.engine_helpers import published
from tests.workflows.factories import entry, outcome, workflow_build
from workflows.models import BatchJob, WorkflowNode, WorkflowRun


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def post(client, path, text: str):
    return client.post(path, text, content_type="application/json")


def test_json_problem_counts_levels_and_finds_nul_in_values_and_keys():
    assert json_problem(json.loads(nested(MAX_JSON_DEPTH))) is None
    assert json_problem(json.loads(nested(MAX_JSON_DEPTH + 1))) == JSON_TOO_DEEP
    assert json_problem({"a": [{"b": "x\x00"}]}) == JSON_HAS_NUL
    assert json_problem({"a\x00": 1}) == JSON_HAS_NUL
    assert json_problem(["ok", {"\ud800": 1}]) == JSON_HAS_SURROGATE
    assert json_problem({"a": ["\\u0000 is only text here", 1, None, 2.5]}) is None


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 100_000])
def test_json_loads_refuses_deep_nesting_without_recursing_into_an_error(depth):
    with pytest.raises(JSONInputError, match="nested at most 64 levels"):
        json_loads(nested(depth))


def test_the_serializer_field_checks_values_given_in_code_and_form_text():
    field = JSONField()
    deep = json.loads(nested(MAX_JSON_DEPTH))
    assert field.run_validation(deep) == deep
    for value in ({"key": "a\x00b"}, [deep]):
        with pytest.raises(serializers.ValidationError):
            field.run_validation(value)
    field = JSONField(binary=True)
    assert field.run_validation('{"a": 1}') == {"a": 1}
    with pytest.raises(serializers.ValidationError) as raised:
        field.run_validation('{"a": "\\u0000"}')
    assert raised.value.detail == [JSON_HAS_NUL]


@pytest.fixture
def bodies(org_a):
    """Each path and body that gave a 500 with a NUL inside, and the rows it would write."""
    draft, _ = workflow_build(
        org_id=org_a.id, nodes=[entry(), outcome()], edges=["start -> done"], publish=False
    )
    active, _ = published(org_a.id, "start>done")
    node = {"key": "n1", "node_type": "general", "kind": "noop", "version": draft.version}
    return [
        ("/api/v2/micro-states/", {"dom_snapshot": "<p>x</p>", "action_json": {"k": "\0"}}),
        (
            "/api/v2/micro-states/",
            {"dom_snapshot": "<p>x</p>", "action_json": {}, "semantic_spec": {"\0": 1}},
        ),
        ("/api/v2/endpoints/", {"name": "e", "channel_type": "uhc-portal", "config": {"a": "\0"}}),
        (f"/api/v2/workflows/{draft.pk}/nodes/", {**node, "config": {"url": "\0"}}),
        (f"/api/v2/workflows/{draft.pk}/nodes/", {**node, "position": {"x": "\0"}}),
        (f"/api/v2/workflows/{active.pk}/runs/", {"input": {"member_id": "\0"}}),
    ]


def _written(org) -> list[int]:
    with org_context(org.id):
        return [
            MicroState.objects.count(),
            Endpoint.objects.count(),
            WorkflowNode.objects.filter(key="n1").count(),
            WorkflowRun.objects.count(),
        ]


@pytest.mark.django_db
def test_a_nul_anywhere_in_a_body_is_a_400_and_writes_nothing(api, org_a, bodies):
    client = api(org_a, "org_admin")
    before = _written(org_a)
    for path, body in bodies:
        response = post(client, path, json.dumps(body))
        assert response.status_code == 400, (path, response.content)
        assert response.json()["error"]["message"] == JSON_HAS_NUL
    assert _written(org_a) == before


@pytest.mark.django_db
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 50_000])
def test_a_deeply_nested_body_is_a_400(api, org_a, depth):
    text = '{"dom_snapshot": "<p>x</p>", "action_json": {"a": ' + nested(depth) + "}}"
    response = post(api(org_a, "org_admin"), "/api/v2/micro-states/", text)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == JSON_TOO_DEEP


@pytest.mark.django_db
def test_malformed_json_is_still_a_parse_error(api, org_a):
    response = post(api(org_a, "org_admin"), "/api/v2/endpoints/", '{"name": ')
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("JSON parse error")


@pytest.mark.django_db
def test_json_in_a_form_field_gets_the_same_checks(api, org_a):
    workflow, _ = published(org_a.id, "start>done", required_data=["member_id"])
    response = api(org_a, "operator").post(
        "/api/v2/batch-jobs/",
        {
            "workflow": str(workflow.pk),
            "file": SimpleUploadedFile("rows.csv", b"member_id\nW1\n"),
            "column_map": '{"member_id\\u0000": "member_id"}',
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"column_map": [JSON_HAS_NUL]}
    with org_context(org_a.id):
        assert not BatchJob.objects.exists()
