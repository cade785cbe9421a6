"""Celery tasks of the engine (thin: ids in, a service call), and the engine's recovery in
the worker's main process: attempts whose pool process died, and a worker's start-up."""

import logging
import time
from datetime import timedelta

from billiard.einfo import ExceptionWithTraceback
from billiard.exceptions import WorkerLostError
from celery.exceptions import TimeLimitExceeded
from celery.signals import worker_ready
from celery.worker.request import Request
from django.conf import settings
from django.db import DatabaseError, connection, connections

from rcm import clock
from rcm.celery import OrgTask, app
from rcm.context import org_context
from rcm.db import outage
from workflows.engine import attempts, dispatch, recovery
from workflows.services.batch import BATCH_FEED, FEED_BATCH, batch_feed, feed_send
from workflows.services.batch_staging import batch_upload_staging_purge

logger = logging.getLogger(__name__)

# How Celery reports, in the worker's main process, a pool process that died under a task:
# killed (a crash, the OOM killer, SIGKILL), or killed at the task's hard time limit.
_LOST = {WorkerLostError: attempts.WORKER_LOST, TimeLimitExceeded: attempts.TIMEOUT}


class NodeRunRequest(Request):
    """A node-run message as the worker's main process tracks it.

    When Celery reports the pool process running it lost, the attempt it claimed is taken back
    here at once (a failed attempt, retried per the node's policy) instead of waiting out its
    lease. The message itself goes back to the broker (reject_on_worker_lost), but its
    redelivery could claim nothing while the node run was still ``running``.
    """

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        exc = exc_info.exception
        # Billiard hands the error over wrapped, with its traceback as text.
        error_kind = _LOST.get(type(exc.exc if isinstance(exc, ExceptionWithTraceback) else exc))
        if error_kind:
            _take_back(task_id=self.id, kwargs=self.kwargs, error_kind=error_kind)
        return super().on_failure(exc_info, send_failed_event, return_ok)


def _take_back(*, task_id: str, kwargs: dict, error_kind: str) -> None:
    try:
        with org_context(kwargs["org_id"]):
            recovery.node_run_recover(
                node_run_id=kwargs["node_run_id"], task_id=task_id, error_kind=error_kind
            )
    except DatabaseError:
        # The main process must go on consuming; the lease brings the attempt back later.
        logger.exception("node run %s: could not take back a lost attempt", kwargs)
    finally:
        # Not kept open in the main process: the pool processes it forks later must not share
        # it, and a database restart would leave it dead with nobody checking it.
        connections.close_all()


# The engine manages its own transactions: the claim commits before the kind runs (maybe
# for minutes), and the completion is another one.
@app.task(
    base=OrgTask,
    bind=True,
    name=dispatch.NODE_RUN_EXECUTE,
    wrap_in_transaction=False,
    Request=NodeRunRequest,
)
def node_run_execute_task(self, *, org_id: str, node_run_id: int) -> None:
    # An unreachable database is waited out in place (no message churn), for at most half the
    # lease grace: the soft time limit is the node's timeout plus that grace, so the kind still
    # gets its whole timeout. Then the message goes back to the broker to wait there.
    started = time.monotonic()
    # Trying again (here or as a Celery retry), the task may meet its own claim: it committed,
    # but the connection went before the answer came back.
    resume = self.request.retries > 0

    def execute() -> None:
        nonlocal resume
        try:
            attempts.node_run_execute(
                node_run_id=node_run_id,
                task_id=self.request.id,
                worker=self.request.hostname or "",
                resume=resume,
            )
        finally:
            resume = True

    try:
        outage.retry_while_unreachable(
            execute,
            until=lambda: time.monotonic() - started >= settings.ENGINE_LEASE_GRACE_S / 2,
            what=f"node run {node_run_id}",
        )
    except outage.DatabaseUnreachable as exc:
        raise self.retry(exc=exc, countdown=outage.BACKOFF_CAP_S, max_retries=None) from exc


@app.task(name="workflows.engine_reap")
def engine_reap_task() -> dict:
    return engine_reap()


def engine_reap(*, limit: int = 500) -> dict:
    """Recover stalled work in every organization; returns what it did, by kind."""
    now = clock.now()
    ready_before = now - timedelta(seconds=settings.ENGINE_REQUEUE_AFTER_S)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM engine_stalled_work(%s, %s, %s)", [now, ready_before, limit])
        rows = cursor.fetchall()
    done = {"lease": 0, "ready": 0, "deadline": 0}
    for what, org_id, item_id in rows:
        with org_context(org_id):
            if what == "lease":
                done[what] += recovery.node_run_recover(node_run_id=item_id)
            elif what == "ready":
                recovery.node_run_requeue(node_run_id=item_id)
                done[what] += 1
            else:
                done[what] += recovery.run_expire(run_id=item_id)
    return done


def engine_worker_restarted(*, worker: str) -> int:
    """Take back the attempts still claimed under this worker node name: they belonged to a
    previous incarnation (a crash, a supervisor's restart) and died with it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM engine_claims_of_worker(%s)", [worker])
        rows = cursor.fetchall()
    taken = 0
    for org_id, node_run_id in rows:
        with org_context(org_id):
            taken += recovery.node_run_recover(node_run_id=node_run_id, worker=worker)
    return taken


@worker_ready.connect
def _recover_at_start(sender, **kwargs) -> None:
    """At a worker's start: its predecessor's attempts back, and the reaper's pass, so that
    messages lost while the broker or the workers were down are sent again now rather than at
    beat's next tick (or never, where no beat runs).

    Celery sends this before the worker's event loop hands out its first message, so no
    attempt of this incarnation can be mistaken for its predecessor's.
    """
    try:
        taken = engine_worker_restarted(worker=sender.hostname)
        done = engine_reap()
        logger.info(
            "worker %s started: %s lost attempts taken back, reaper %s",
            sender.hostname,
            taken,
            done,
        )
    except DatabaseError:
        logger.exception(
            "worker %s: recovery at start-up failed; beat's reaper will do it", sender.hostname
        )
    finally:
        connections.close_all()


@app.task(name="workflows.batch_upload_staging_purge")
def batch_upload_staging_purge_task() -> int:
    """Uploads chosen in the console and never started, deleted once they waited too long
    (they hold patient data), even when nobody stages another file."""
    return batch_upload_staging_purge()


@app.task(name=BATCH_FEED)
def batch_feed_task() -> int:
    """Start pending batch rows where there is room (after uploads, as rows end, and by beat
    as a safety net for a feed message that was lost)."""
    started = batch_feed()
    if started >= FEED_BATCH:
        feed_send()  # there may be room for more
    return started
