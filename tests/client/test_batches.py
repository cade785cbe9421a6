"""Batch jobs through the client, on the session's real worker: an upload waited for with its
progress, results.csv as text and as a file, failed rows, cancel and retry."""

import csv
import io

import pytest
from rcm_client import BatchJob, Conflict

from tests.client.conftest import echo_workflow

PATIENTS = "member_id,name\nW100,Ada\nW101,Bob\nW102,José\n"


@pytest.mark.celery_worker
def test_an_upload_waited_for_runs_every_row_and_reports_progress_to_100(
    celery_worker, connect, org_a, tmp_path
):
    workflow = echo_workflow(org_a)
    path = tmp_path / "patients.csv"
    path.write_text(PATIENTS)
    seen: list[BatchJob] = []
    client = connect(org_a)
    job = client.upload_batch(path, workflow=workflow, wait=True, on_progress=seen.append)

    assert job.finished and job.status == "completed"
    assert (job.total_rows, job.successful_rows, job.failed_rows) == (3, 3, 0)
    assert seen[0].id == job.id and seen[-1] == job
    percents = [update.progress.percent_done for update in seen]
    assert percents == sorted(percents) and percents[-1] == 100.0
    assert len({(u.status, u.processed_rows) for u in seen}) == len(seen)  # changes only

    table = list(csv.reader(io.StringIO(client.batch_results(job.id))))
    assert table[0] == ["row_number", "member_id", "name", "echo", "greeting", "status", "error"]
    assert table[3] == ["3", "W102", "José", "W102", "hi", "completed", ""]

    saved = client.save_batch_results(job.id, tmp_path / "results.csv")
    content = saved.read_bytes()
    assert content.startswith("\ufeff".encode())  # as served: Excel reads it as UTF-8
    assert content.decode("utf-8-sig") == client.batch_results(job.id)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["patients.csv", "results.csv"]


@pytest.mark.celery_worker
def test_skipped_invalid_rows_are_the_failed_rows_and_are_not_retried(
    celery_worker, connect, org_a
):
    workflow = echo_workflow(org_a)
    client = connect(org_a)
    upload = b"member_id,name\nW1,Ada\n,Nobody\n"
    job = client.upload_batch(upload, workflow=workflow, on_invalid="skip", wait=True)
    assert (job.status, job.successful_rows, job.failed_rows) == ("partially_completed", 1, 1)
    [failed] = client.batch_items(job.id, status="failed")
    assert failed.row_number == 2 and failed.input == {"name": "Nobody"}
    assert failed.error == "Member ID is required."
    # Refused before any run: nothing "failed in a run" for a retry to take.
    with pytest.raises(Conflict) as refused:
        client.retry_failed(job.id)
    assert refused.value.code == "nothing_to_retry"


def test_a_pending_job_is_cancelled_and_a_cancelled_one_cannot_be_again(connect, org_a):
    workflow = echo_workflow(org_a)
    client = connect(org_a)
    job = client.upload_batch(io.BytesIO(PATIENTS.encode()), workflow=workflow)
    assert job.status == "pending" and job.file_name == "upload.csv"
    cancelled = client.cancel_batch(job.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_rows == 3
    assert client.wait_for_batch(job.id, timeout=5).finished
    with pytest.raises(Conflict) as refused:
        client.cancel_batch(job.id)
    assert refused.value.code == "job_finished"
