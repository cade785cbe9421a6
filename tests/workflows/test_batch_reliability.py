"""Batch jobs under faults: duplicate uploads at the same moment, a worker killed mid-batch."""

import pytest
from django.db.models import Count, Q

from rcm.context import org_context
from tests.conftest import wait_for
from tests.helpers import race_run as _race_run
from tests.workflows.engine_helpers import (
    KILLABLE_STEP,
    published,
    published_http,
    quickly_recovering_workers,
)
from tests.workflows.test_batch_engine import _counters_match_items
from workflows.models import BatchJob, BatchJobItem, NodeRun
from workflows.services import batch
from workflows.tasks import engine_reap


@pytest.mark.django_db(transaction=True)
def test_the_same_idempotency_key_at_the_same_moment_makes_one_job(api, org_a):
    workflow, _ = published(org_a.id, "start>done")
    body = {"workflow": str(workflow.pk), "rows": [{"n": "1"}, {"n": "2"}]}
    clients = [api(org_a, "operator") for _ in range(4)]
    answers = []

    def send(client):
        response = client.post(
            "/api/v2/batch-jobs/", body, "json", HTTP_IDEMPOTENCY_KEY="monday-list"
        )
        answers.append((response.status_code, response.json()["id"]))

    _race_run(send, clients)
    assert {status for status, _ in answers} == {201}
    assert len({job_id for _, job_id in answers}) == 1
    with org_context(org_a.id):
        assert BatchJob.objects.count() == 1
        assert BatchJobItem.objects.count() == 2


def test_a_worker_killed_mid_batch_loses_no_row_and_runs_none_twice(
    worker_processes, org_a, http_server, settings
):
    http_server.respond("/eligibility", status=200, body={"active": True}, delay=0.5, times=1000)
    workflow, revision = published_http(
        org_a.id, http_server.url("/eligibility"), key="check", **KILLABLE_STEP
    )
    worker_start = quickly_recovering_workers(worker_processes, settings)
    first = worker_start()
    with org_context(org_a.id):
        job = batch.batch_job_create(
            workflow=workflow,
            revision=revision,
            rows=batch.rows_numbered({"member_id": f"W{n}"} for n in range(12)),
            max_concurrency=4,
        )
    batch.batch_feed()  # the feed message went to the in-process queue: feed here instead

    def checks_running() -> int:
        with org_context(org_a.id):
            return NodeRun.objects.filter(
                run__batch_job_item__batch_job=job, node_key="check", status="running"
            ).count()

    wait_for(lambda: checks_running() >= 2, timeout=30)
    first.kill()
    worker_start()

    def settled() -> bool:
        engine_reap()
        batch.batch_feed()
        with org_context(org_a.id):
            return BatchJob.objects.get(pk=job.pk).completed_at is not None

    wait_for(settled, timeout=120, interval=0.5)
    _counters_match_items(org_a.id, job.pk)
    with org_context(org_a.id):
        job.refresh_from_db()
        items = BatchJobItem.objects.filter(batch_job=job)
        assert job.successful_rows == 12 and items.filter(status="completed").count() == 12
        # No row's run completed twice: one successful trace per node run.
        doubled = (
            NodeRun.objects.filter(run__batch_job_item__batch_job=job)
            .annotate(ok=Count("traces", filter=Q(traces__success=True)))
            .exclude(ok=1)
        )
        assert not doubled.exists()
        assert all(item.attempts == 1 for item in items)
