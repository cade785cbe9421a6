"""Runs through the client: started and waited for on the real worker, refused with the API's
code and fields, and started once however often the request is sent (Idempotency-Key)."""

import uuid

import httpx
import pytest
from rcm_client import Conflict, ValidationError

from rcm.context import org_context
from tests.client.conftest import echo_workflow
from workflows.models import BatchJob, WorkflowRun


@pytest.mark.celery_worker
def test_a_run_waited_for_ends_with_its_outputs(celery_worker, connect, org_a):
    workflow = echo_workflow(org_a)
    client = connect(org_a)
    run = client.run_workflow(workflow, input={"member_id": "W7"}, wait=True, wait_timeout=60)
    assert run.finished and (run.status, run.result, run.outcome) == (
        "completed",
        "success",
        "done",
    )
    assert run.context["nodes"]["shape"]["output"]["greeting"] == "hi"
    assert [node.status for node in run.nodes] == ["completed"] * 3
    assert client.run(run.id) == run


def test_input_without_the_required_field_is_refused_with_what_is_missing(connect, org_a):
    client = connect(org_a)
    with pytest.raises(ValidationError) as refused:
        client.run_workflow(echo_workflow(org_a), input={"name": "Ada"})
    assert (refused.value.status, refused.value.code) == (400, "invalid_input")
    assert refused.value.details["missing"] == ["member_id"]


def test_a_taken_external_id_is_a_conflict_naming_the_field(connect, org_a):
    workflow = echo_workflow(org_a)
    client = connect(org_a)
    first = client.run_workflow(workflow, input={"member_id": "W1"}, external_id="claim-1")
    assert first.external_id == "claim-1"
    with pytest.raises(Conflict) as refused:
        client.run_workflow(workflow, input={"member_id": "W2"}, external_id="claim-1")
    assert refused.value.code == "external_id_taken"
    assert list(refused.value.fields) == ["external_id"]


def runs_of(tenant) -> int:
    with org_context(tenant.id):
        return WorkflowRun.objects.count()


def test_the_same_idempotency_key_starts_one_run(connect, org_a, recorder):
    workflow = echo_workflow(org_a)
    client = connect(org_a, transport=recorder)
    key = str(uuid.uuid4())
    first = client.run_workflow(workflow, input={"member_id": "W1"}, idempotency_key=key)
    again = client.run_workflow(workflow, input={"member_id": "W1"}, idempotency_key=key)
    assert again == first and runs_of(org_a) == 1
    # Without a key of the caller's, every call is a new run, each with a key of its own.
    client.run_workflow(workflow, input={"member_id": "W1"})
    client.run_workflow(workflow, input={"member_id": "W1"})
    assert runs_of(org_a) == 3
    starts = [item for item in recorder.log if item.path.endswith("/runs/")]
    keys = [item.headers["idempotency-key"] for item in starts]
    assert keys[:2] == [key, key] and len(set(keys)) == 3
    assert all(uuid.UUID(value).version == 4 for value in keys[2:])


class LosingTransport(httpx.HTTPTransport):
    """Delivers every request, but loses the answer to the first POST to ``path``: the server
    has done the work, the client sees a timeout."""

    def __init__(self, path: str):
        super().__init__()
        self.path, self.lost, self.keys = path, 0, []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path == self.path:
            self.keys.append(request.headers.get("Idempotency-Key"))
            if not self.lost:
                self.lost += 1
                response.read()
                response.close()
                raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


def test_a_run_whose_answer_was_lost_is_retried_and_started_once(connect, org_a):
    workflow = echo_workflow(org_a)
    transport = LosingTransport(f"/api/v2/workflows/{workflow.pk}/runs/")
    client = connect(org_a, transport=transport)
    run = client.run_workflow(workflow, input={"member_id": "W1"})
    assert transport.lost == 1 and len(transport.keys) == 2
    assert transport.keys[0] == transport.keys[1]
    assert runs_of(org_a) == 1
    with org_context(org_a.id):
        assert WorkflowRun.objects.get().pk == run.id


def test_an_upload_whose_answer_was_lost_is_sent_again_and_creates_one_job(
    connect, org_a, tmp_path
):
    workflow = echo_workflow(org_a)
    path = tmp_path / "patients.csv"
    path.write_text("member_id\nW1\nW2\n")
    transport = LosingTransport("/api/v2/batch-jobs/")
    client = connect(org_a, transport=transport)
    job = client.upload_batch(path, workflow=workflow, prompt="nightly")
    assert transport.lost == 1 and transport.keys[0] == transport.keys[1]
    assert job.total_rows == 2 and job.file_name == "patients.csv"
    with org_context(org_a.id):
        assert list(BatchJob.objects.values_list("pk", flat=True)) == [job.id]
