"""Engine throughput against raw Celery, on the same broker and the same two worker processes.

    .venv/bin/python benchmarks/engine_throughput.py [--runs 1000]

Throughput: the worker stops consuming, the phase fills the queue (``--runs`` Celery chains of
6 no-op tasks for the baseline; ``--runs`` runs of a no-op workflow, entry -> 3 parallel
general nodes -> join -> outcome, 6 node steps a run, for the engine), the worker resumes and
the clock runs until the last chain or run is done. The load generator's own cost stays out of
both figures. Entry and outcome nodes complete inline, in the transaction that decides them;
the other four steps of a run each travel through the broker.

Hand-off: ``--handoff-runs`` runs one after the other on the idle pool; for every node that
travels through the broker, its start minus the end of the predecessor that released it
(commit, broker, worker pick-up, claim), with nothing queued ahead of it.

Both on one `celery worker` with 2 prefork processes, on the embedded PostgreSQL and Redis (or
DATABASE_URL/REDIS_URL), in a throw-away database. Prints engine_steps_per_s,
raw_celery_steps_per_s, ratio_vs_raw_celery, handoff_p50_ms and handoff_p99_ms.
"""

from __future__ import annotations

import argparse
import time
import uuid

from _common import bench_database, bench_operator, bench_queue, percentile
from django.db import transaction

from rcm.celery import app
from rcm.context import org_context
from rcm.progress import ProgressBar
from rcm.workers import WorkerProcess
from workflows.models import NodeRun, WorkflowRun
from workflows.models.runs import RUN_TERMINAL
from workflows.services import authoring, runs

LOGLEVEL = "WARNING"
STEPS_PER_RUN = 6
NODES = [
    {"key": "start", "node_type": "entry"},
    *({"key": key, "node_type": "general", "kind": "noop"} for key in ("a", "b", "c")),
    {"key": "join", "node_type": "general", "kind": "noop"},
    {"key": "done", "node_type": "outcome", "config": {"result": "success"}},
]
EDGES = [
    *({"from": "start", "to": key, "label": "success"} for key in ("a", "b", "c")),
    *({"from": key, "to": "join", "label": "success"} for key in ("a", "b", "c")),
    {"from": "join", "to": "done", "label": "success"},
]


def wait_until(done, total: int, label: str, timeout: float = 900, interval=0.05) -> float:
    """Poll ``done()`` (how many of ``total`` finished) with a progress bar; the end time."""
    deadline = time.monotonic() + timeout
    with ProgressBar(total, label) as bar:
        finished = 0
        while finished < total:
            if time.monotonic() > deadline:
                raise SystemExit(f"{label}: only {finished}/{total} done after {timeout}s")
            now = done()
            bar.advance(now - finished)
            finished = now
            if finished < total:
                time.sleep(interval)
    return time.perf_counter()


def publish_noop_workflow(org_id, user):
    workflow = authoring.workflow_create(org_id=org_id, created_by=user, name="bench no-op")
    authoring.workflow_graph_replace(
        workflow=workflow, version=workflow.version, nodes=NODES, transitions=EDGES
    )
    workflow.refresh_from_db()
    authoring.workflow_publish(workflow=workflow, created_by=user)
    workflow.refresh_from_db()
    return workflow


class Paused:
    """The worker stops consuming the queue for the block, so that a phase can fill the queue
    first and time only the draining: the load generator's own cost stays out of the figure.
    The clock starts at the first sign of progress after the block (``started``)."""

    def __init__(self, queue: str, progress):
        self.queue = queue
        self.progress = progress

    def __enter__(self):
        app.control.cancel_consumer(self.queue, reply=True, timeout=5)

    def __exit__(self, *exc):
        app.control.add_consumer(self.queue)
        while not self.progress():
            time.sleep(0.001)
        self.started = time.perf_counter()


def engine_throughput(org_id, workflow, count: int, queue: str) -> float:
    with org_context(org_id):
        run_ids: list[int] = []

        def claimed() -> bool:
            return NodeRun.objects.filter(run_id__in=run_ids[:50], attempt__gt=0).exists()

        def finished() -> int:
            return WorkflowRun.objects.filter(pk__in=run_ids, status__in=RUN_TERMINAL).count()

        pause = Paused(queue, claimed)
        with pause, transaction.atomic():  # every first message leaves at the commit
            run_ids += [runs.run_start(workflow=workflow, input={}).pk for _ in range(count)]
        ended = wait_until(finished, count, "engine runs", interval=0.1)
        assert not WorkflowRun.objects.filter(pk__in=run_ids).exclude(status="completed").exists()
    return count * STEPS_PER_RUN / (ended - pause.started)


def engine_handoffs(org_id, workflow, count: int) -> list[float]:
    """Runs one after the other on an idle pool: the hand-off with nothing queued before it."""
    with org_context(org_id):
        run_ids = []
        with ProgressBar(count, "hand-off runs") as bar:
            for _ in range(count):
                run_id = runs.run_start(workflow=workflow, input={}).pk
                run_ids.append(run_id)
                while not WorkflowRun.objects.filter(pk=run_id, status__in=RUN_TERMINAL).exists():
                    time.sleep(0.005)
                bar.advance()
        return handoff_ms(run_ids)


def handoff_ms(run_ids: list[int]) -> list[float]:
    """For every node that travels through the broker (a, b, c, join): its start minus the end
    of the predecessor that released it (the last of the three, for the join). Entry and
    outcome complete inline, where they are decided, so they have no hand-off to measure."""
    predecessors = {"a": ["start"], "b": ["start"], "c": ["start"], "join": ["a", "b", "c"]}
    times: dict[int, dict] = {}
    for run_id, key, started, ended in NodeRun.objects.filter(run_id__in=run_ids).values_list(
        "run_id", "node_key", "started_at", "ended_at"
    ):
        times.setdefault(run_id, {})[key] = (started, ended)
    gaps = []
    for nodes in times.values():
        for key, sources in predecessors.items():
            released = max(nodes[source][1] for source in sources)
            gaps.append((nodes[key][0] - released).total_seconds() * 1000)
    return gaps


def raw_celery(count: int, queue: str) -> float:
    from celery import chain

    from benchmarks.raw_celery import counter, noop_step

    key = f"bench-raw-{uuid.uuid4().hex}"
    chains = [chain(*(noop_step.si(key) for _ in range(STEPS_PER_RUN))) for _ in range(count)]
    pause = Paused(queue, lambda: counter().get(key))
    with pause:
        for item in chains:
            item.apply_async()
    ended = wait_until(
        lambda: int(counter().get(key) or 0) // STEPS_PER_RUN, count, "raw celery chains"
    )
    counter().delete(key)
    return count * STEPS_PER_RUN / (ended - pause.started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument(
        "--handoff-runs", type=int, default=100, help="sequential runs for the hand-off figure"
    )
    args = parser.parse_args()
    with bench_queue() as queue, bench_database():
        org, user = bench_operator()
        worker = WorkerProcess(
            queue, concurrency=2, include=("benchmarks.raw_celery",), loglevel=LOGLEVEL
        )
        try:
            raw_celery(20, queue)  # warm-up: both pool processes up and connected
            raw = raw_celery(args.runs, queue)
            with org_context(org.id):
                workflow = publish_noop_workflow(org.id, user)
            engine_steps = engine_throughput(org.id, workflow, args.runs, queue)
            handoffs = engine_handoffs(org.id, workflow, args.handoff_runs)
        finally:
            worker.stop()
    print(f"engine_steps_per_s: {engine_steps:.0f}")
    print(f"raw_celery_steps_per_s: {raw:.0f}")
    print(f"ratio_vs_raw_celery: {engine_steps / raw:.2f}")
    print(f"handoff_p50_ms: {percentile(handoffs, 50):.1f}")
    print(f"handoff_p99_ms: {percentile(handoffs, 99):.1f}")


if __name__ == "__main__":
    main()
