"""Batch rows through the engine: limits, exact counters, cancel, retry, fairness."""

import pytest
from django.db import connection

from rcm.context import org_context
from tests.conftest import make_tenant, wait_for
from tests.helpers import endpoint_add
from tests.workflows.engine_helpers import published, published_transform, published_wait
from workflows.models import BatchJob, BatchJobItem
from workflows.services import batch

pytestmark = pytest.mark.celery_worker

STATUS_COUNTERS = {
    "pending": "pending_rows",
    "running": "running_rows",
    "completed": "successful_rows",
    "failed": "failed_rows",
    "cancelled": "cancelled_rows",
}


def _job(org_id, job_id) -> BatchJob:
    with org_context(org_id):
        return BatchJob.objects.get(pk=job_id)


def _counters_match_items(org_id, job_id) -> None:
    """The job's counters against its items' statuses, read in one statement (one snapshot):
    the invariant must hold at every instant, not only once the job is done."""
    counts = ", ".join(
        f"(SELECT count(*) FROM batch_job_item i WHERE i.batch_job_id = j.batch_job_id "
        f"AND i.status = '{status}')"
        for status in STATUS_COUNTERS
    )
    fields = ", ".join(STATUS_COUNTERS.values())
    with org_context(org_id), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT total_rows, {fields}, {counts} FROM batch_job j WHERE j.batch_job_id = %s",
            [job_id],
        )
        total, *values = cursor.fetchone()
    counters, items = values[: len(STATUS_COUNTERS)], values[len(STATUS_COUNTERS) :]
    pairs = zip(STATUS_COUNTERS, zip(counters, items, strict=True), strict=True)
    assert counters == items, dict(pairs)
    assert total == sum(items)


def _create(tenant, workflow, revision, rows, **kwargs):
    with org_context(tenant.id):
        return batch.batch_job_create(
            workflow=workflow,
            revision=revision,
            rows=batch.rows_numbered(rows),
            created_by=tenant["operator"],
            **kwargs,
        )


def _finished(org_id, job_id, timeout=60):
    return wait_for(lambda: _job(org_id, job_id).completed_at and _job(org_id, job_id), timeout)


def test_a_batch_runs_every_row_with_exact_counters(celery_worker, org_a):
    workflow, revision = published_transform(org_a.id, {"greeting": "hi {{ input.name }}"})
    job = _create(org_a, workflow, revision, [{"name": f"p{n}"} for n in range(12)])
    job = _finished(org_a.id, job.pk)
    assert job.status_id == "completed" and job.successful_rows == 12
    _counters_match_items(org_a.id, job.pk)
    with org_context(org_a.id):
        first = BatchJobItem.objects.get(batch_job=job, row_number=1)
    assert first.output_data == {"greeting": "hi p0"} and first.attempts == 1


def test_max_concurrency_of_job_and_endpoint_hold_while_rows_run(celery_worker, org_a):
    endpoint = endpoint_add(org_a, "UHC", config={"max_concurrency": 3})
    workflow, revision = published_wait(org_a.id, 0.2, endpoint_id=endpoint.pk)
    jobs = [
        _create(org_a, workflow, revision, [{}] * 6, max_concurrency=2),
        _create(org_a, workflow, revision, [{}] * 6, max_concurrency=2),
    ]
    peaks = {"job": 0, "endpoint": 0}

    def observe():
        states = [_job(org_a.id, job.pk) for job in jobs]
        for state in states:
            _counters_match_items(org_a.id, state.pk)
        peaks["job"] = max(peaks["job"], *(s.running_rows for s in states))
        peaks["endpoint"] = max(peaks["endpoint"], sum(s.running_rows for s in states))
        return all(s.completed_at for s in states)

    wait_for(observe, timeout=60, interval=0.05)
    assert peaks["job"] <= 2 and peaks["endpoint"] <= 3
    assert peaks["endpoint"] >= 2  # it did run rows in parallel


def test_failed_rows_partial_status_and_retry(celery_worker, org_a):
    decision = {"conditions": [{"when": "input.ok == 'yes'", "label": "ok"}], "default": "bad"}
    workflow, revision = published(
        org_a.id, "start>check, check>done:ok, check>fail:bad", decisions={"check": decision}
    )
    job = _create(org_a, workflow, revision, [{"ok": "yes"}, {"ok": "no"}, {"ok": "yes"}])
    job = _finished(org_a.id, job.pk)
    assert (job.status_id, job.successful_rows, job.failed_rows) == ("partially_completed", 2, 1)
    with org_context(org_a.id):
        batch.batch_job_retry_failed(job=job)
    job = _finished(org_a.id, job.pk)
    assert job.status_id == "partially_completed" and job.failed_rows == 1
    with org_context(org_a.id):
        retried = BatchJobItem.objects.get(batch_job=job, row_number=2)
    assert retried.attempts == 2 and retried.status == "failed"
    _counters_match_items(org_a.id, job.pk)


def test_invalid_rows_skipped_become_failed_items(db, org_a):
    workflow, revision = published(org_a.id, "start>done")
    rows = [batch.Row(1, {"a": 1}, "member_id: missing"), batch.Row(2, {"a": 2}, "bad")]
    with org_context(org_a.id):
        job = batch.batch_job_create(workflow=workflow, revision=revision, rows=rows)
    assert (job.status_id, job.failed_rows, job.total_rows) == ("failed", 2, 2)
    _counters_match_items(org_a.id, job.pk)


def test_cancel_lets_running_rows_finish_and_cancels_the_rest(celery_worker, org_a):
    workflow, revision = published_wait(org_a.id, 0.3)
    job = _create(org_a, workflow, revision, [{}] * 20, max_concurrency=2)
    wait_for(lambda: _job(org_a.id, job.pk).running_rows == 2)
    with org_context(org_a.id):
        batch.batch_job_cancel(job=job)
    job = _finished(org_a.id, job.pk)
    assert job.status_id == "cancelled"
    assert job.cancelled_rows >= 18 and job.successful_rows + job.cancelled_rows == 20
    _counters_match_items(org_a.id, job.pk)


def test_a_small_batch_is_not_starved_by_a_large_one(celery_worker, org_a):
    org_b = make_tenant("Second Org")
    big, big_revision = published(org_a.id, "start>step, step>done")
    small, small_revision = published(org_b.id, "start>step, step>done")
    large_job = _create(org_a, big, big_revision, [{}] * 1000, max_concurrency=4)
    small_job = _create(org_b, small, small_revision, [{}] * 10, max_concurrency=4)
    done_small = _finished(org_b.id, small_job.pk, timeout=120)
    with org_context(org_a.id):
        large_done_before = BatchJobItem.objects.filter(
            batch_job=large_job, status="completed", completed_at__lte=done_small.completed_at
        ).count()
        batch.batch_job_cancel(job=large_job)
    assert large_done_before < 100, large_done_before
    _finished(org_a.id, large_job.pk, timeout=60)


def test_rows_whose_run_ends_at_once_are_settled(db, org_a):
    """entry -> outcome completes inside run_start: the row must not stay running."""
    workflow, revision = published(org_a.id, "start>done")
    with org_context(org_a.id):
        job = batch.batch_job_create(
            workflow=workflow, revision=revision, rows=batch.rows_numbered([{}, {}, {}])
        )
    assert batch.batch_feed() == 3
    job = _job(org_a.id, job.pk)
    assert (job.status_id, job.successful_rows, job.running_rows) == ("completed", 3, 0)
    _counters_match_items(org_a.id, job.pk)
    with org_context(org_a.id):
        assert all(item.run_id for item in BatchJobItem.objects.filter(batch_job=job))
