"""Sending "execute node run N": the one message the engine sends, after its transaction
commits. Every part of the engine that makes a node run ready sends it from here (the
decisions that release a node, a retry, a wait, the reaper's re-send)."""

from __future__ import annotations

from django.conf import settings

from rcm import messaging
from rcm.celery import app as celery_app
from workflows.engine import kinds
from workflows.engine.graph import Node
from workflows.models import NodeRun

# Longest a message may wait on the broker before it is due (retries are capped at this in
# workflows/engine/retry.py; longer waits go through the reaper instead).
MAX_COUNTDOWN_S = 3600

# The task that executes a node run, sent by its name: workflows/tasks.py defines it under this
# name and calls the engine, so the engine does not import the tasks back.
NODE_RUN_EXECUTE = "workflows.node_run_execute"


def enqueue(node_run: NodeRun, node: Node, *, countdown: float = 0.0) -> None:
    """Send "execute node run N" once the current transaction commits (best-effort: a message
    the broker refused is sent again by the reaper, rcm/messaging.py), to the queue of the
    node's kind (browser work has its own) or the engine's."""
    timeout_s = node.effective_timeout_s

    if countdown > MAX_COUNTDOWN_S:
        # A message held longer than the broker's visibility timeout would be delivered
        # again; a long wait is left to the reaper, which sends it once not_before has come.
        return
    soft = (timeout_s or 0) + settings.ENGINE_LEASE_GRACE_S
    options = {"countdown": max(countdown, 0.0)} if countdown > 0 else {}
    if timeout_s:
        # A hard backstop in prefork workers for kinds that ignore their deadline.
        options.update(soft_time_limit=soft, time_limit=soft + 10)
    kwargs = {"org_id": str(node_run.org_id), "node_run_id": node_run.pk}
    # Named per message, from the settings of the moment (a test routes to its own workers).
    kind = kinds.get(node.kind) if node.kind else None
    options["queue"] = getattr(kind, "queue", None) or settings.CELERY_TASK_DEFAULT_QUEUE
    messaging.send_after_commit(celery_app.signature(NODE_RUN_EXECUTE), kwargs=kwargs, **options)
