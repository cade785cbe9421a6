"""The engine under faults: killed workers, duplicate messages, concurrency, retries on a fake
clock, republishing under running runs, and the Celery settings durable work needs."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db.models import Count, Q

from rcm import clock
from rcm.context import org_context
from tests.conftest import wait_for
from tests.workflows.engine_helpers import (
    KILLABLE_STEP,
    published,
    published_http,
    published_transform,
    published_wait,
    quickly_recovering_workers,
)
from workflows.engine import attempts, dispatch, retry
from workflows.engine.graph import MAX_NODE_TIMEOUT_S
from workflows.models import NodeRun, WorkflowRevision, WorkflowRun, WorkflowTrace
from workflows.models.runs import RUN_TERMINAL
from workflows.services import runs
from workflows.tasks import engine_reap

FAN = "start>a, start>b, start>c, a>join, b>join, c>join, join>done"


def _start_many(org_id, workflow, count: int) -> list[int]:
    with org_context(org_id):
        return [runs.run_start(workflow=workflow, input={"n": n}).pk for n in range(count)]


def _all_finished(org_id, run_ids) -> bool:
    with org_context(org_id):
        open_runs = WorkflowRun.objects.filter(pk__in=run_ids).exclude(status__in=RUN_TERMINAL)
        return not open_runs.exists()


def _successes_per_node_run(org_id, run_ids) -> dict:
    with org_context(org_id):
        rows = (
            NodeRun.objects.filter(run_id__in=run_ids)
            .annotate(ok=Count("traces", filter=Q(traces__success=True)))
            .values_list("node_key", "status", "ok")
        )
        return list(rows)


def test_a_worker_killed_mid_run_loses_nothing_and_repeats_nothing(
    worker_processes, org_a, http_server, settings
):
    http_server.respond("/slow", status=200, body={"ok": True}, delay=1.0, times=1000)
    workflow, _ = published_http(org_a.id, http_server.url("/slow"), **KILLABLE_STEP)
    worker_start = quickly_recovering_workers(worker_processes, settings)
    first = worker_start()
    run_ids = _start_many(org_a.id, workflow, 8)

    def calls_running() -> set[int]:
        with org_context(org_a.id):
            running = NodeRun.objects.filter(run_id__in=run_ids, node_key="call", status="running")
            return set(running.values_list("pk", flat=True))

    wait_for(lambda: len(calls_running()) >= 2, timeout=30)
    first.kill()
    killed = calls_running()
    worker_start()
    wait_for(
        lambda: engine_reap() is not None and _all_finished(org_a.id, run_ids),
        timeout=90,
        interval=0.5,
    )

    with org_context(org_a.id):
        statuses = set(WorkflowRun.objects.filter(pk__in=run_ids).values_list("status", flat=True))
        lost = WorkflowTrace.objects.filter(
            node_run_id__in=killed, success=False, action_detail__error_kind="worker_lost"
        )
        assert lost.count() == len(killed)
    assert statuses == {"completed"}
    rows = _successes_per_node_run(org_a.id, run_ids)
    assert all(status == "completed" and ok == 1 for _, status, ok in rows), rows


def test_two_hundred_concurrent_fan_out_fan_in_runs_join_once_each(worker_processes, org_a):
    workflow, _ = published(org_a.id, FAN, name="fan-200")
    worker_processes(concurrency=2)
    run_ids = _start_many(org_a.id, workflow, 200)
    wait_for(lambda: _all_finished(org_a.id, run_ids), timeout=240, interval=0.25)
    with org_context(org_a.id):
        assert set(WorkflowRun.objects.filter(pk__in=run_ids).values_list("status", flat=True)) == {
            "completed"
        }
        joins = WorkflowTrace.objects.filter(run_id__in=run_ids, node_key="join")
        assert joins.count() == 200
        assert joins.values("run_id").distinct().count() == 200
    rows = _successes_per_node_run(org_a.id, run_ids)
    assert len(rows) == 200 * 6 and all(ok == 1 for _, _, ok in rows)


@pytest.mark.celery_worker
def test_every_message_delivered_twice_still_runs_each_node_once(celery_worker, org_a, monkeypatch):
    original = dispatch.enqueue

    def twice(node_run, node, **kwargs):
        original(node_run, node, **kwargs)
        original(node_run, node, **kwargs)

    monkeypatch.setattr(dispatch, "enqueue", twice)
    workflow, _ = published(org_a.id, FAN)
    run_ids = _start_many(org_a.id, workflow, 5)
    wait_for(lambda: _all_finished(org_a.id, run_ids))
    rows = _successes_per_node_run(org_a.id, run_ids)
    assert len(rows) == 30 and all(ok == 1 for _, _, ok in rows)


class FakeClock:
    def __init__(self):
        self.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.mark.django_db
def test_the_retry_schedule_follows_the_policy_exactly(org_a, http_server, monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(clock, "now", fake)
    http_server.respond("/down", status=503, times=100)
    policy = {
        "initial_interval_s": 2,
        "backoff_coefficient": 3,
        "maximum_interval_s": 30,
        "maximum_attempts": 5,
        "jitter": 0,
    }
    workflow, _ = published_http(org_a.id, http_server.url("/down"), retry=policy)
    with org_context(org_a.id):
        run = runs.run_start(workflow=workflow, input={})
        start = NodeRun.objects.get(run=run, node_key="start")
        attempts.node_run_execute(node_run_id=start.pk)
        call = NodeRun.objects.get(run=run, node_key="call")
        waits = []
        for _ in range(5):
            attempts.node_run_execute(node_run_id=call.pk)
            call.refresh_from_db()
            if call.status != "ready":
                break
            waits.append((call.not_before - fake.now).total_seconds())
            # Too early: the claim refuses, and nothing runs.
            fake.advance(waits[-1] - 0.001)
            attempts.node_run_execute(node_run_id=call.pk)
            call.refresh_from_db()
            assert call.status == "ready"
            fake.advance(0.001)
    assert waits == [2, 6, 18, 30]  # 2 * 3^(n-1), capped at 30
    assert call.status == "failed" and call.attempt == 5
    assert http_server.hits("/down") == 5


def test_jitter_stretches_each_delay_by_at_most_its_fraction():
    import random

    policy = retry.RetryPolicy.from_config({"initial_interval_s": 4, "jitter": 0.25})
    rng = random.Random(7)
    delays = [policy.delay_s(attempt=1, rng=rng) for _ in range(200)]
    assert min(delays) >= 4 and max(delays) <= 5 and len(set(delays)) > 100


@pytest.mark.celery_worker
def test_republishing_does_not_touch_runs_in_flight(celery_worker, org_a):
    workflow, first = published(
        org_a.id,
        "start>pause, pause>shape, shape>done",
        kinds={"pause": "wait", "shape": "transform"},
        configs={"pause": {"seconds": 0.6}, "shape": {"outputs": {"version": "one"}}},
    )
    run_ids = _start_many(org_a.id, workflow, 3)
    # A new revision while they wait: another output, and the wait node gone.
    _, second = published_transform(org_a.id, {"version": "two"})
    with org_context(org_a.id):
        WorkflowRevision.objects.filter(pk=second.pk).delete()
        snapshot = dict(second.graph)
        WorkflowRevision.objects.create(
            org_id=org_a.id, workflow=workflow, revision_num=2, graph=snapshot
        )
        later = runs.run_start(workflow=workflow, input={})
    wait_for(lambda: _all_finished(org_a.id, [*run_ids, later.pk]))
    with org_context(org_a.id):
        for run in WorkflowRun.objects.filter(pk__in=run_ids):
            assert run.revision_id == first.pk
            assert run.context["nodes"]["shape"]["output"] == {"version": "one"}
            assert "pause" in run.context["nodes"]
        later.refresh_from_db()
        assert later.context["nodes"]["shape"]["output"] == {"version": "two"}


def test_celery_is_configured_for_durable_work():
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST is True
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert visibility > MAX_NODE_TIMEOUT_S + settings.ENGINE_LEASE_GRACE_S
    assert visibility > retry.MAX_INTERVAL_S


@pytest.mark.django_db
def test_the_reaper_times_out_a_run_past_its_deadline(org_a, monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(clock, "now", fake)
    workflow, _ = published_wait(org_a.id, 3600)
    with org_context(org_a.id):
        run = runs.run_start(workflow=workflow, input={}, timeout_s=60)
        pause = NodeRun.objects.get(run=run, node_key="pause")
        attempts.node_run_execute(node_run_id=pause.pk)  # waits: back to ready until later
        pause.refresh_from_db()
        assert pause.status == "ready" and pause.attempt == 0
    fake.advance(61)
    assert engine_reap()["deadline"] == 1
    with org_context(org_a.id):
        run.refresh_from_db()
        pause.refresh_from_db()
    assert run.status == "timeout" and run.ended_at == fake.now
    assert pause.status == "cancelled"
    assert engine_reap()["deadline"] == 0  # nothing twice


@pytest.mark.django_db
def test_a_lost_attempt_is_retried_once_its_lease_expires(org_a, monkeypatch, settings):
    fake = FakeClock()
    monkeypatch.setattr(clock, "now", fake)
    settings.ENGINE_LEASE_GRACE_S = 5
    workflow, _ = published(
        org_a.id,
        "start>call, call>done",
        timeouts={"call": 10},
        retry={"call": {"maximum_attempts": 2, "initial_interval_s": 1, "jitter": 0}},
    )
    with org_context(org_a.id):
        run = runs.run_start(workflow=workflow, input={})
        call = NodeRun.objects.get(run=run, node_key="call")
        # A worker claims the attempt and dies before it reports.
        assert attempts.node_run_claim(node_run_id=call.pk) is not None
    fake.advance(14)
    assert engine_reap()["lease"] == 0  # within timeout + grace: still its worker's
    fake.advance(2)
    assert engine_reap()["lease"] == 1
    with org_context(org_a.id):
        call.refresh_from_db()
        assert (call.status, call.error_kind, call.attempt) == ("ready", "worker_lost", 1)
        fake.advance(1)
        attempts.node_run_execute(node_run_id=call.pk)
        run.refresh_from_db()
        lost = WorkflowTrace.objects.get(node_run=call, attempt=1)
    assert run.status == "completed"
    assert lost.success is False and lost.action_detail["error_kind"] == "worker_lost"


@pytest.mark.django_db
def test_a_node_over_its_timeout_is_a_retried_timeout(org_a, http_server):
    http_server.respond("/slow", status=200, delay=1.5, times=1)
    http_server.respond("/slow", status=200, body={"ok": 1})
    workflow, _ = published_http(
        org_a.id,
        http_server.url("/slow"),
        timeout_s=5,
        node_timeout_s=1,
        retry={"maximum_attempts": 2, "initial_interval_s": 0, "jitter": 0},
    )
    with org_context(org_a.id):
        run = runs.run_start(workflow=workflow, input={})
        call = NodeRun.objects.get(run=run, node_key="call")
        attempts.node_run_execute(node_run_id=call.pk)
        call.refresh_from_db()
        assert (call.status, call.error_kind) == ("ready", "timeout")
        attempts.node_run_execute(node_run_id=call.pk)
        call.refresh_from_db()
    assert call.status == "completed" and call.output["body"] == {"ok": 1}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/x", "http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/"]
)
def test_the_http_kind_refuses_internal_addresses(org_a, settings, url):
    settings.ENGINE_HTTP_ALLOW_PRIVATE = False
    workflow, _ = published_http(org_a.id, url, retry={"maximum_attempts": 3})
    with org_context(org_a.id):
        run = runs.run_start(workflow=workflow, input={})
        call = NodeRun.objects.get(run=run, node_key="call")
        attempts.node_run_execute(node_run_id=call.pk)
        call.refresh_from_db()
    assert (call.status, call.error_kind, call.attempt) == ("failed", "forbidden_address", 1)
