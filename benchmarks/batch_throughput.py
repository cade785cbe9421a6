"""Batch throughput against the engine's own, on the same broker and worker processes.

    .venv/bin/python benchmarks/batch_throughput.py [--rows 10000] [--engine-runs 2000]

The engine: ``--engine-runs`` runs of the engine benchmark's no-op workflow, queued at once and
drained (engine_throughput.py), once before the batch and once after, averaged. The batch: a
``--rows``-row batch job through the same workflow, fed by the batch feeder (job
max_concurrency 200, so that the feeder, not the limit, is what is measured), timed from its
first row's start to its completion. Both on one `celery
worker` with 2 prefork processes, in a throw-away database.

Prints batch_rows_per_s, engine_runs_per_s and ratio_vs_engine (target >= 0.8: batching adds
little).
"""

from __future__ import annotations

import argparse

from _common import bench_database, bench_operator, bench_queue
from engine_throughput import engine_throughput, publish_noop_workflow, wait_until

from rcm.context import org_context
from rcm.workers import WorkerProcess
from workflows.models import BatchJob, BatchJobItem
from workflows.selectors.runs import revision_latest
from workflows.services import batch

STEPS_PER_RUN = 6


def batch_rows_per_s(org_id, user, workflow, rows: int) -> float:
    with org_context(org_id):
        revision = revision_latest(workflow=workflow)
        job = batch.batch_job_create(
            workflow=workflow,
            revision=revision,
            rows=batch.rows_numbered({} for _ in range(rows)),
            created_by=user,
            max_concurrency=200,
        )

        def processed() -> int:
            return BatchJob.objects.values_list("processed_rows", flat=True).get(pk=job.pk)

        wait_until(processed, rows, "batch rows", interval=0.1)
        first = (
            BatchJobItem.objects.filter(batch_job=job)
            .order_by("row_number")
            .values_list("run__started_at", flat=True)
            .first()
        )
        job.refresh_from_db()
        assert job.status_id == "completed", job.status_id
    return rows / (job.completed_at - first).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--engine-runs", type=int, default=2000)
    args = parser.parse_args()
    with bench_queue() as queue, bench_database():
        org, user = bench_operator()
        with org_context(org.id):
            workflow = publish_noop_workflow(org.id, user)
        worker = WorkerProcess(queue, concurrency=2)
        try:
            engine_throughput(org.id, workflow, 50, queue)  # warm-up
            # The engine before and after the batch, averaged: on a shared machine the load
            # can change during the run, and the batch alone must not carry the change.
            before = engine_throughput(org.id, workflow, args.engine_runs, queue)
            rows = batch_rows_per_s(org.id, user, workflow, args.rows)
            after = engine_throughput(org.id, workflow, args.engine_runs, queue)
            engine_runs = (before + after) / 2 / STEPS_PER_RUN  # steps/s -> runs/s
        finally:
            worker.stop()
    print(f"batch_rows_per_s: {rows:.0f}")
    print(f"engine_runs_per_s: {engine_runs:.0f}")
    print(f"engine_runs_per_s_before: {before / STEPS_PER_RUN:.0f}")
    print(f"engine_runs_per_s_after: {after / STEPS_PER_RUN:.0f}")
    print(f"ratio_vs_engine: {rows / engine_runs:.2f}")


if __name__ == "__main__":
    main()
