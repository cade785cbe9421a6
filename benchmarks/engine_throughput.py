"""Engine throughput against raw Celery, on the same broker and the same two worker processes.

    .venv/bin/python benchmarks/engine_throughput.py [--runs 1000]

The engine: a no-op workflow (entry -> 3 parallel general nodes -> join -> outcome, 6 node
steps a run), ``--runs`` runs fed ``--window`` at a time as a batch feeder would (so that the
hand-off measures the engine, not the depth of a queue of a thousand runs started at once).
Entry and outcome nodes complete inline, in the transaction that decides them; the other four
steps of a run each travel through the broker. The baseline: as many Celery chains of 6 no-op
tasks, all sent at once. Both on one `celery worker` with 2 prefork processes, on the embedded
PostgreSQL and
Redis (or DATABASE_URL/REDIS_URL), in a throw-away database.

Prints engine_steps_per_s, raw_celery_steps_per_s, ratio_vs_raw_celery and handoff_p50_ms
(a node's completion to its successor's start: commit, broker, worker pick-up, claim).
"""

from __future__ import annotations

import argparse
import time
import uuid

from _common import bench_database, percentile
from django.db import transaction

from rcm.celery import app
from rcm.context import org_context
from rcm.lookups import OrgType, UserRole
from rcm.progress import ProgressBar
from rcm.workers import WorkerProcess
from tenants import services as tenant_services
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


def engine(org_id, user, count: int, window: int) -> tuple[float, list[float]]:
    with org_context(org_id):
        workflow = authoring.workflow_create(org_id=org_id, created_by=user, name="bench no-op")
        authoring.workflow_graph_replace(
            workflow=workflow, version=workflow.version, nodes=NODES, transitions=EDGES
        )
        workflow.refresh_from_db()
        authoring.workflow_publish(workflow=workflow, created_by=user)
        workflow.refresh_from_db()
        run_ids: list[int] = []
        started = time.perf_counter()

        def top_up() -> int:
            """Keep ``window`` runs in flight, as a batch feeder does; how many finished."""
            finished = WorkflowRun.objects.filter(pk__in=run_ids, status__in=RUN_TERMINAL).count()
            wanted = min(count - len(run_ids), window - (len(run_ids) - finished))
            if wanted > 0:
                with transaction.atomic():  # their messages leave together, at the commit
                    run_ids.extend(
                        runs.run_start(workflow=workflow, input={}).pk for _ in range(wanted)
                    )
            return finished

        ended = wait_until(top_up, count, "engine runs", interval=0.01)
        assert not WorkflowRun.objects.filter(pk__in=run_ids).exclude(status="completed").exists()
        handoffs = handoff_ms(run_ids)
    return count * STEPS_PER_RUN / (ended - started), handoffs


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


def raw_celery(count: int) -> float:
    from celery import chain

    from benchmarks.raw_celery import counter, noop_step

    key = f"bench-raw-{uuid.uuid4().hex}"
    chains = [chain(*(noop_step.si(key) for _ in range(STEPS_PER_RUN))) for _ in range(count)]
    started = time.perf_counter()
    for item in chains:
        item.apply_async()
    ended = wait_until(
        lambda: int(counter().get(key) or 0) // STEPS_PER_RUN, count, "raw celery chains"
    )
    counter().delete(key)
    return count * STEPS_PER_RUN / (ended - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument(
        "--window", type=int, default=50, help="runs in flight at once (default 50)"
    )
    args = parser.parse_args()
    from django.conf import settings

    queue = f"bench-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    app.conf.task_default_queue = queue
    with bench_database():
        org = tenant_services.organization_create(name="Bench", org_type=OrgType.BILLING_FIRM)
        user = tenant_services.user_create(
            org_id=org.id, email="bench@bench.test", role=UserRole.OPERATOR
        )
        worker = WorkerProcess(
            queue, concurrency=2, include=("benchmarks.raw_celery",), loglevel=LOGLEVEL
        )
        try:
            raw = raw_celery(20)  # warm-up: both pool processes up and connected
            raw = raw_celery(args.runs)
            engine_steps, handoffs = engine(org.id, user, args.runs, args.window)
        finally:
            worker.stop()
            with app.connection_for_write() as conn:
                conn.default_channel.queue_delete(queue)
    print(f"engine_steps_per_s: {engine_steps:.0f}")
    print(f"raw_celery_steps_per_s: {raw:.0f}")
    print(f"ratio_vs_raw_celery: {engine_steps / raw:.2f}")
    print(f"handoff_p50_ms: {percentile(handoffs, 50):.1f}")
    print(f"handoff_p99_ms: {percentile(handoffs, 99):.1f}")


if __name__ == "__main__":
    main()
