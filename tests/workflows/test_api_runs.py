"""Runs and traces through the API: start, watch, cancel, re-run; bad input; two orgs."""

import pytest

from rcm.context import org_context
from tests.conftest import wait_for
from tests.helpers import endpoint_add
from tests.workflows.engine_helpers import published, published_wait
from workflows.models import Workflow, WorkflowRun


def _start(client, workflow, body=None, **headers):
    return client.post(
        f"/api/v2/workflows/{workflow.pk}/runs/",
        {"input": {}} if body is None else body,
        "json",
        **headers,
    )


def _finished(client, run_id):
    def done():
        body = client.get(f"/api/v2/runs/{run_id}/").json()
        return body if body["status"] in ("completed", "failed", "cancelled", "timeout") else None

    return wait_for(done)


@pytest.mark.celery_worker
def test_start_watch_and_trace_a_run(celery_worker, api, org_a):
    workflow, _ = published(
        org_a.id, "start>a, start>b, a>done, b>done", required_data=["member_id"]
    )
    client = api(org_a, "operator")
    response = _start(client, workflow, {"input": {"member_id": "W123"}, "external_id": "row-1"})
    assert response.status_code == 202, response.json()
    run = _finished(client, response.json()["id"])
    assert run["status"] == "completed" and run["external_id"] == "row-1"
    assert {node["node_key"]: node["status"] for node in run["nodes"]} == {
        "start": "completed",
        "a": "completed",
        "b": "completed",
        "done": "completed",
    }
    traces = client.get("/api/v2/traces/", {"run": run["id"]}).json()["results"]
    assert len(traces) == 4
    assert traces[0]["created_at"] >= traces[-1]["created_at"]  # newest first
    listed = client.get("/api/v2/runs/", {"workflow": str(workflow.pk)}).json()["results"]
    assert [item["id"] for item in listed] == [run["id"]]


@pytest.mark.django_db
def test_missing_required_fields_are_listed_and_nothing_is_written(api, org_a):
    workflow, _ = published(org_a.id, "start>done", required_data=["member_id", "dob"])
    response = _start(api(org_a, "operator"), workflow, {"input": {"member_id": ""}})
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"missing": ["member_id", "dob"]}
    with org_context(org_a.id):
        assert not WorkflowRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"input": []},
        {"input": {}, "extra": 1},
        {"input": {}, "timeout_s": 0},
        {"input": {"x": "y" * 300_000}},
    ],
)
def test_bad_run_requests_are_400(api, org_a, body):
    workflow, _ = published(org_a.id, "start>done")
    assert _start(api(org_a, "operator"), workflow, body).status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["draft", "archived", "suspended"])
def test_a_workflow_that_is_not_active_does_not_run(api, org_a, status):
    workflow, _ = published(org_a.id, "start>done")
    with org_context(org_a.id):
        Workflow.objects.filter(pk=workflow.pk).update(status_id=status)
    response = _start(api(org_a, "operator"), workflow)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "workflow_not_active"


@pytest.mark.django_db
def test_a_workflow_never_published_does_not_run(api, org_a):
    with org_context(org_a.id):
        workflow = Workflow.objects.create(org_id=org_a.id, name="draft", status_id="active")
    response = _start(api(org_a, "operator"), workflow)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "workflow_not_published"


@pytest.mark.django_db
def test_idempotency_key_and_external_id_make_one_run(api, org_a):
    workflow, _ = published(org_a.id, "start>done")
    client = api(org_a, "operator")
    first = _start(client, workflow, HTTP_IDEMPOTENCY_KEY="batch-7-row-1")
    again = _start(client, workflow, HTTP_IDEMPOTENCY_KEY="batch-7-row-1")
    assert first.json()["id"] == again.json()["id"]
    body = {"input": {}, "external_id": "claim-42"}
    assert _start(client, workflow, body).status_code == 202
    assert _start(client, workflow, body).status_code == 409
    with org_context(org_a.id):
        assert WorkflowRun.objects.count() == 2


@pytest.mark.django_db
def test_runs_and_traces_of_another_org_are_404_and_unlisted(api, org_a, org_b):
    workflow_b, _ = published(org_b.id, "start>done")
    run_b = _start(api(org_b, "operator"), workflow_b).json()
    client = api(org_a, "org_admin")
    for url in (f"/api/v2/runs/{run_b['id']}/",):
        assert client.get(url).status_code == 404
    assert client.post(f"/api/v2/runs/{run_b['id']}/cancel/").status_code == 404
    assert client.post(f"/api/v2/runs/{run_b['id']}/rerun/", {}, "json").status_code == 404
    assert _start(client, workflow_b).status_code == 404
    assert client.get("/api/v2/runs/").json()["results"] == []
    assert client.get("/api/v2/traces/", {"workflow": str(workflow_b.pk)}).json()["results"] == []
    with org_context(org_b.id):
        assert WorkflowRun.objects.count() == 1


@pytest.mark.django_db
def test_roles_anonymous_and_filters(api, anon, org_a):
    workflow, _ = published(org_a.id, "start>done")
    assert anon.get("/api/v2/runs/").status_code == 401
    assert anon.get("/api/v2/traces/").status_code == 401
    assert _start(api(org_a, "viewer"), workflow).status_code == 403
    assert api(org_a, "viewer").get("/api/v2/runs/").status_code == 200
    for params, field in (({"status": "exploded"}, "status"), ({"foo": 1}, "foo")):
        bad = api(org_a, "viewer").get("/api/v2/runs/", params)
        assert bad.status_code == 400
        assert set(bad.json()["error"]["details"]) == {field}


@pytest.mark.celery_worker
def test_cancel_and_rerun(celery_worker, api, org_a):
    workflow, _ = published_wait(org_a.id, 30)
    client = api(org_a, "operator")
    run_id = _start(client, workflow, {"input": {"n": 1}}).json()["id"]
    wait_for(lambda: client.get(f"/api/v2/runs/{run_id}/").json()["status"] == "running")
    assert client.post(f"/api/v2/runs/{run_id}/cancel/").status_code == 200
    assert _finished(client, run_id)["status"] == "cancelled"
    assert client.post(f"/api/v2/runs/{run_id}/cancel/").status_code == 409
    rerun = client.post(f"/api/v2/runs/{run_id}/rerun/", {}, "json")
    assert rerun.status_code == 202
    assert rerun.json()["input"] == {"n": 1} and rerun.json()["id"] != run_id


@pytest.mark.django_db
def test_the_task_types_effective_requirements_apply_to_run_input(api, org_a):
    from workflows.models import TaskType

    endpoint = endpoint_add(org_a, "Anthem", "anthem-availity")
    task_type = TaskType.objects.get(domain="eligibility", action="check")
    workflow, _ = published(
        org_a.id, "start>done", task_type_id=str(task_type.pk), endpoint_id=endpoint.pk
    )
    client = api(org_a, "operator")
    row = {
        "member_id": "XEH123456789",
        "patient_first_name": "Ada",
        "patient_last_name": "Lovelace",
        "patient_dob": "1990-13-45",
        "provider_npi": "123",
    }
    response = _start(client, workflow, {"input": row})
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    # Anthem (the payer) adds the group number; the platform checks the formats.
    assert details["missing"] == ["group_number"]
    assert set(details["errors"]) == {"patient_dob", "provider_npi"}
    fixed = {**row, "patient_dob": "1990-12-10", "provider_npi": "1234567893", "group_number": "G1"}
    assert _start(client, workflow, {"input": fixed}).status_code == 202
