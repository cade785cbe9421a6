"""How fast the engine recovers, on real worker processes: a pool process killed mid-step, a
worker restarted under its name, the database unreachable for a while, messages lost while no
worker ran. None of these waits for a lease (node timeout + 30 s) or the reaper's re-send
(60 s): each test gives the engine 10 s."""

import contextlib
import os
import signal
import socket
import threading
import time

import psutil
import pytest
from django.db import connection

from rcm.context import org_context
from rcm.workers import database_url
from tests.conftest import wait_for
from tests.workflows.engine_helpers import published
from workflows.engine import attempts, dispatch, recovery
from workflows.models import NodeRun, WorkflowRun, WorkflowTrace
from workflows.models.runs import RUN_TERMINAL
from workflows.services import runs

RECOVERY_S = 10
# Long enough that only a recovery, not the lease, can bring an attempt back within the test.
SLOW_NODE = {"timeouts": {"call": 60}}
RETRY_AT_ONCE = {"call": {"maximum_attempts": 3, "initial_interval_s": 0, "jitter": 0}}


def _slow_call(org_id, http_server, *, delay: float):
    http_server.respond("/call", status=200, body={"ok": True}, delay=delay, times=1)
    http_server.respond("/call", status=200, body={"ok": True})
    workflow, _ = published(
        org_id,
        "start>call, call>done",
        kinds={"call": "http"},
        configs={"call": {"url": http_server.url("/call"), "timeout_s": 60}},
        retry=RETRY_AT_ONCE,
        **SLOW_NODE,
    )
    return workflow


def _node_run(org_id, run_id, key="call") -> NodeRun:
    with org_context(org_id):
        return NodeRun.objects.get(run_id=run_id, node_key=key)


def _finished(org_id, run_ids) -> bool:
    with org_context(org_id):
        return not WorkflowRun.objects.filter(pk__in=run_ids).exclude(status__in=RUN_TERMINAL)


def _attempts(org_id, node_run_id) -> list[tuple]:
    with org_context(org_id):
        traces = WorkflowTrace.objects.filter(node_run_id=node_run_id).order_by("attempt", "id")
        return [(t.attempt, t.success, t.action_detail.get("error_kind", "")) for t in traces.all()]


def _running(org_id, run_id) -> bool:
    return _node_run(org_id, run_id).status == "running"


def test_a_pool_process_killed_mid_step_is_retried_at_once(worker_processes, org_a, http_server):
    workflow = _slow_call(org_a.id, http_server, delay=30)
    worker = worker_processes(concurrency=1)
    with org_context(org_a.id):
        run = runs.run_start(workflow=workflow, input={})
    wait_for(lambda: _running(org_a.id, run.pk) and http_server.hits("/call") == 1, timeout=30)

    (pool_process,) = psutil.Process(worker.process.pid).children()
    os.kill(pool_process.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(lambda: http_server.hits("/call") == 2, timeout=RECOVERY_S)
    restarted_in = time.monotonic() - killed_at
    wait_for(lambda: _finished(org_a.id, [run.pk]), timeout=RECOVERY_S)

    call = _node_run(org_a.id, run.pk)
    assert (call.status, call.attempt) == ("completed", 2)
    assert _attempts(org_a.id, call.pk) == [(1, False, "worker_lost"), (2, True, "")]
    assert http_server.hits("/call") == 2  # once per recorded attempt
    print(f"pool process killed: attempt 2 started {restarted_in:.2f}s later")


def test_a_worker_restarted_under_its_name_takes_back_its_predecessors_attempts(
    worker_processes, org_a, http_server
):
    workflow = _slow_call(org_a.id, http_server, delay=30)
    name = f"restarted-{os.getpid()}@localhost"
    first = worker_processes(concurrency=1, name=name)
    with org_context(org_a.id):
        run = runs.run_start(workflow=workflow, input={})
    wait_for(lambda: _running(org_a.id, run.pk) and http_server.hits("/call") == 1, timeout=30)

    first.kill()  # the main process too: nobody reports anything
    killed_at = time.monotonic()
    worker_processes(concurrency=1, name=name)
    wait_for(lambda: _finished(org_a.id, [run.pk]), timeout=RECOVERY_S + 10)  # + start-up
    recovered_in = time.monotonic() - killed_at

    call = _node_run(org_a.id, run.pk)
    assert (call.status, call.attempt) == ("completed", 2)
    assert _attempts(org_a.id, call.pk) == [(1, False, "worker_lost"), (2, True, "")]
    assert http_server.hits("/call") == 2
    print(f"worker restarted under its name: run completed {recovered_in:.2f}s after the kill")


def test_a_worker_sends_lost_messages_again_when_it_starts(
    worker_processes, org_a, monkeypatch, settings
):
    workflow, _ = published(org_a.id, "start>a, a>b, b>done")
    with monkeypatch.context() as lost:
        lost.setattr(dispatch, "enqueue", lambda *args, **kwargs: None)
        with org_context(org_a.id):
            run = runs.run_start(workflow=workflow, input={})
    assert _node_run(org_a.id, run.pk, "a").status == "ready"
    time.sleep(1.1)  # older than the worker's ENGINE_REQUEUE_AFTER_S: its message is lost

    started_at = time.monotonic()
    worker_processes(concurrency=1, env={"ENGINE_REQUEUE_AFTER_S": "1"})
    wait_for(lambda: _finished(org_a.id, [run.pk]), timeout=RECOVERY_S + 10)  # + start-up
    print(f"lost message: run completed {time.monotonic() - started_at:.2f}s after worker start")
    with org_context(org_a.id):
        run.refresh_from_db()
    assert run.status == "completed"


class DatabaseProxy:
    """A TCP proxy in front of the test database that a test cuts (every connection through
    it dropped, new ones closed as soon as they open) and restores: the database unreachable
    for the processes that use it, as in a restart or a network cut, and for them alone."""

    def __init__(self, host: str, port: int):
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._open = True
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                if not self._open:
                    client.close()
                    continue
                upstream = socket.create_connection(self.target)
                self._sockets |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def cut(self) -> None:
        with self._lock:
            self._open = False
            sockets = list(self._sockets)
        for sock in sockets:
            self._drop(sock)

    def restore(self) -> None:
        with self._lock:
            self._open = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


def test_work_waits_out_an_unreachable_database_and_resumes_when_it_returns(
    worker_processes, org_a, http_server
):
    db = connection.settings_dict
    proxy = DatabaseProxy(db["HOST"], db["PORT"])
    try:
        proxied = database_url({**db, "HOST": "127.0.0.1", "PORT": proxy.port})
        worker_processes(concurrency=2, env={"DATABASE_URL": proxied})
        # One attempt is mid-step when the database goes: its result must still be recorded.
        in_flight = _slow_call(org_a.id, http_server, delay=2)
        queued = published(org_a.id, "start>a, a>b, b>done")[0]
        with org_context(org_a.id):
            first = runs.run_start(workflow=in_flight, input={})
        wait_for(lambda: _running(org_a.id, first.pk), timeout=30)

        proxy.cut()
        with org_context(org_a.id):
            later = [runs.run_start(workflow=queued, input={"n": n}).pk for n in range(6)]
        time.sleep(5)  # the step ends, the queued messages are delivered: all meet no database
        assert not _finished(org_a.id, [first.pk])
        proxy.restore()
        restored_at = time.monotonic()
        wait_for(lambda: _finished(org_a.id, [first.pk, *later]), timeout=RECOVERY_S)
        print(f"database back: all runs finished {time.monotonic() - restored_at:.2f}s later")
    finally:
        proxy.close()

    with org_context(org_a.id):
        statuses = WorkflowRun.objects.filter(pk__in=[first.pk, *later])
        assert set(statuses.values_list("status", flat=True)) == {"completed"}
    call = _node_run(org_a.id, first.pk)
    # The step that ran through the outage is recorded as it ran: one attempt, one call.
    assert _attempts(org_a.id, call.pk) == [(1, True, "")]
    assert http_server.hits("/call") == 1


@pytest.mark.django_db
def test_only_the_claiming_task_resumes_its_claim_or_has_it_taken_back(org_a):
    workflow, _ = published(org_a.id, "start>call, call>done")
    with org_context(org_a.id):
        run = runs.run_start(workflow=workflow, input={})
        call = NodeRun.objects.get(run=run, node_key="call")
        claimed = attempts.node_run_claim(node_run_id=call.pk, task_id="t1", worker="w@h")
        assert claimed.node_run.attempt == 1
        # Its claim committed but the answer was lost: the same task takes it up again, as the
        # same attempt; a redelivery, another task or a first try does not.
        assert attempts.node_run_claim(node_run_id=call.pk, task_id="t1") is None
        assert attempts.node_run_claim(node_run_id=call.pk, task_id="t2", resume=True) is None
        resumed = attempts.node_run_claim(node_run_id=call.pk, task_id="t1", resume=True)
        assert resumed.node_run.attempt == 1
        # Lost: only for the task and the worker node that hold the claim.
        assert not recovery.node_run_recover(node_run_id=call.pk, task_id="t2")
        assert not recovery.node_run_recover(node_run_id=call.pk, worker="other@h")
        assert recovery.node_run_recover(node_run_id=call.pk, task_id="t1")
        call.refresh_from_db()
    assert (call.status, call.attempt, call.error_kind) == ("ready", 1, "worker_lost")
