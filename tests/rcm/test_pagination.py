"""Every list checks its query the same way: a bad page_size or cursor, or an unknown
parameter, is a 400 naming it. The lists are found in the schema (every GET that pages), so
a new list is checked without being named here."""

import base64
import json
import re

import pytest
from drf_spectacular.generators import SchemaGenerator

from rcm.api.pagination import INVALID_CURSOR
from tests.webactions.factories import credential_body
from tests.workflows.engine_helpers import published


def cursor(query: str) -> str:
    """A cursor as DRF encodes one: the base64 of its own query string."""
    return base64.b64encode(query.encode()).decode()


BAD_QUERIES = [
    ({"page_size": "0"}, "page_size"),
    ({"page_size": "201"}, "page_size"),
    ({"page_size": "many"}, "page_size"),
    ({"cursor": "not base64 at all"}, "cursor"),
    ({"cursor": cursor("o=x")}, "cursor"),
    # These decode, but the position is no value of the ordering field: they reached the
    # database and were a 500.
    ({"cursor": cursor("p=not-a-date")}, "cursor"),
    ({"cursor": cursor("p=99999999999999999999")}, "cursor"),
    ({"cursor": cursor("p=")}, "cursor"),
    ({"no_such_filter": "1"}, "no_such_filter"),
]


def paged_paths() -> list[str]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        path
        for path, operations in schema["paths"].items()
        if any(p["name"] == "cursor" for p in operations.get("get", {}).get("parameters", []))
    )


@pytest.fixture
def lists(api, org_a):
    """Every paged list's URL, with ids of this organization's objects in it."""
    workflow, revision = published(org_a.id, "start>done", required_data=["member_id"])
    client = api(org_a, "org_admin")
    job = client.post(
        "/api/v2/batch-jobs/",
        json.dumps({"workflow": str(workflow.pk), "rows": [{"member_id": "W1"}]}),
        content_type="application/json",
    )
    assert job.status_code == 201, job.content
    credential = client.post(
        "/api/v2/credentials/", json.dumps(credential_body(client)), content_type="application/json"
    )
    assert credential.status_code == 201, credential.content
    ids = {
        "workflows": str(workflow.pk),
        "batch-jobs": str(job.json()["id"]),
        "credentials": str(credential.json()["id"]),
    }
    return [
        re.sub(r"([a-z-]+)/\{\w+\}", lambda m: f"{m.group(1)}/{ids[m.group(1)]}", path)
        for path in paged_paths()
    ]


@pytest.mark.django_db
def test_every_list_refuses_a_bad_page_size_cursor_or_parameter_with_a_400(api, org_a, lists):
    client = api(org_a, "org_admin")
    assert len(lists) >= 18
    for path in lists:
        assert client.get(path).status_code == 200, path
        for query, parameter in BAD_QUERIES:
            response = client.get(path, query)
            assert response.status_code == 400, (path, query, response.content)
            assert parameter in response.json()["error"]["details"], (path, query)


@pytest.mark.django_db
def test_a_cursor_it_gave_out_pages_on_and_a_forged_position_is_named(api, org_a):
    for number in range(3):
        published(org_a.id, "start>done", name=f"Workflow {number}")
    client = api(org_a, "viewer")
    first = client.get("/api/v2/workflows/", {"page_size": 2}).json()
    second = client.get(first["next"]).json()
    assert len(first["results"]) == 2 and len(second["results"]) == 1
    response = client.get("/api/v2/runs/", {"cursor": cursor("p=2026-13-45")})
    assert response.json()["error"]["details"] == {"cursor": [INVALID_CURSOR]}
