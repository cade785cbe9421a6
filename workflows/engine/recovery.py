"""Recovering lost work: attempts whose worker died (the reaper, lost pool processes, restarted
workers), ready node runs whose message was lost, runs past their deadline.

A lost attempt counts as a failed attempt of kind ``worker_lost`` (or ``timeout``, killed at
its hard time limit) and is retried per the node's policy, like any system failure.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from django.db import transaction

from rcm import clock
from workflows.engine import dispatch, hooks, kinds
from workflows.engine.attempts import TIMEOUT, WORKER_LOST, node_run_record
from workflows.engine.graph import graph_of
from workflows.models import NodeRun, NodeRunStatus, RunStatus, WorkflowRun
from workflows.models.runs import RUN_TERMINAL

_LOST_MESSAGES = {
    WORKER_LOST: "the worker running this attempt stopped",
    TIMEOUT: "the worker running this attempt was killed at its hard time limit",
}


def node_run_recover(
    *, node_run_id: int, task_id: str = "", worker: str = "", error_kind: str = WORKER_LOST
) -> bool:
    """Take back a running attempt whose worker died; True if it did.

    Lost means: claimed by ``task_id`` (Celery reported that task's pool process gone), else
    claimed on ``worker`` (a worker node restarted under that name: its predecessor's attempts
    died with it), else past its lease (the reaper: nobody reported anything).
    """
    with transaction.atomic():
        row = NodeRun.objects.filter(pk=node_run_id).values("run_id").first()
        if row is None:
            return False
        run = WorkflowRun.objects.select_for_update().get(pk=row["run_id"])
        node_run = NodeRun.objects.select_for_update().get(pk=node_run_id)
        if node_run.status != NodeRunStatus.RUNNING:
            return False
        if task_id:
            gone = node_run.claim_task_id == task_id
        elif worker:
            gone = node_run.claim_worker == worker
        else:
            gone = cast(datetime, node_run.lease_until) <= clock.now()  # running: has a lease
        if not gone:
            return False
        graph = graph_of(run)
        lost = kinds.TransientError(error_kind, _LOST_MESSAGES[error_kind])
        node = graph.nodes[node_run.node_key]
        node_run_record(
            run=run, node_run=node_run, graph=graph, node=node, outcome=lost, duration_ms=0
        )
        return True


def node_run_requeue(*, node_run_id: int) -> None:
    """Send the message of a ready node run again (a lost or long-delayed message).

    Harmless when the first message is still coming: only one of them can claim.
    """
    with transaction.atomic():
        node_run = NodeRun.objects.filter(pk=node_run_id, status=NodeRunStatus.READY).first()
        if node_run is None:
            return
        # Marked as sent now, so that the next pass does not send it again before its time.
        NodeRun.objects.filter(pk=node_run_id).update(not_before=None, updated_at=clock.now())
        run = WorkflowRun.objects.only("workflow_id", "revision_id").get(pk=node_run.run_id)
        dispatch.enqueue(node_run, graph_of(run).nodes[node_run.node_key])


def run_expire(*, run_id: int) -> bool:
    """A run past its deadline: status timeout; nothing new starts (running attempts finish
    and are discarded)."""
    with transaction.atomic():
        run = WorkflowRun.objects.select_for_update().get(pk=run_id)
        if run.status in RUN_TERMINAL or run.deadline_at is None or run.deadline_at > clock.now():
            return False
        now = clock.now()
        NodeRun.objects.filter(
            run=run, status__in=[NodeRunStatus.PENDING, NodeRunStatus.READY]
        ).update(
            status=NodeRunStatus.CANCELLED, ended_at=now, updated_at=now, error="run timed out"
        )
        hooks.run_finished_announce(
            hooks.RunFinished(
                run=run, status=RunStatus.TIMEOUT, result="", error="the run timed out"
            )
        )
        WorkflowRun.objects.filter(pk=run.pk).update(
            status=RunStatus.TIMEOUT,
            error="the run did not finish before its deadline",
            ended_at=now,
            duration_ms=int((now - (run.started_at or run.created_at)).total_seconds() * 1000),
            updated_at=now,
        )
        return True
