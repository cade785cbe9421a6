"""One attempt of a node run: claim it under a lease, run its kind, record its outcome.

The claim is a conditional UPDATE in one round trip (``_CLAIM_SQL``); the outcome is written
only while the claim holds, with the run row locked, and the decisions it leads to are made in
the same transaction (workflows/engine/decisions.py). The durability rules are in
workflows/engine/__init__.py.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from django.conf import settings
from django.db import connection, transaction

from rcm import clock, phi
from rcm.context import require_org_id
from rcm.db import outage
from rcm.db.org_prefix import org_context_prefix
from workflows.engine import dispatch, kinds
from workflows.engine.completion import node_run_completion_write
from workflows.engine.decisions import run_propagate
from workflows.engine.graph import Graph, Node, graph_of
from workflows.engine.retry import RetryPolicy
from workflows.engine.traces import attempt_trace_write
from workflows.models import NodeRun, NodeRunStatus, NodeType, WorkflowRun
from workflows.models.runs import RUN_TERMINAL

logger = logging.getLogger(__name__)

# The error kinds of system failures the engine itself names (a kind names its own).
WORKER_LOST = "worker_lost"
TIMEOUT = "timeout"
CRASH = "crash"


@dataclass
class Attempt:
    node_run: NodeRun
    run: WorkflowRun
    graph: Graph
    node: Node
    started: float = field(default_factory=time.perf_counter)


# One statement: the conditional claim, its lease from the node's own timeout, and what the
# attempt needs to read.
_CLAIM_SQL = """
WITH claimed AS (
    UPDATE node_run
       SET status = %(running)s, attempt = attempt + (status = %(ready)s)::int,
           started_at = coalesce(started_at, %(now)s),
           lease_until = %(now)s + make_interval(secs => timeout_s + %(grace)s),
           claim_task_id = %(task_id)s, claim_worker = %(worker)s, updated_at = %(now)s
     WHERE id = %(id)s
       AND (status = %(ready)s AND (not_before IS NULL OR not_before <= %(now)s)
            OR status = %(running)s AND %(resume)s AND claim_task_id = %(task_id)s)
    RETURNING id, org_id, run_id, node_key, attempt, started_at, lease_until, idempotency_key
)
SELECT c.id, c.org_id, c.run_id, c.node_key, c.attempt, c.started_at, c.lease_until,
       c.idempotency_key, r.workflow_id, r.revision_id, r.context, r.created_by_id
  FROM claimed c JOIN workflow_run r ON r.id = c.run_id
"""


def _claim_one_round_trip(params: dict):
    """The claim as one message: set the organization, claim, commit.

    Every node step starts with a claim, so it skips Django's transaction (BEGIN, the
    statement, COMMIT: three round trips): on a connection in autocommit, the statements of
    one simple-protocol message run as one implicit transaction, which set_config(..., true)
    lasts for.
    """
    org_id = require_org_id()
    connection.ensure_connection()
    # Django's error wrapper around the driver's own cursor: a lost connection is then a
    # django.db.OperationalError, which the task's wait for the database recognises
    # (rcm/db/outage.py), and the connection is marked as having failed.
    with connection.wrap_database_errors, connection.connection.cursor() as cursor:
        cursor.execute(org_context_prefix(org_id) + _CLAIM_SQL, params)
        cursor.nextset()
        return cursor.fetchone()


def node_run_claim(
    *, node_run_id: int, task_id: str = "", worker: str = "", resume: bool = False
) -> Attempt | None:
    """ready -> running under a lease, or None when there is nothing (left) to do.

    ``task_id`` and ``worker``: the Celery task claiming and the worker node it runs on.
    ``resume``: the task tries again after losing the database, and may find its own claim
    committed although the answer never came back; it takes that attempt up again (the same
    attempt: its kind never ran).
    """
    params = {
        "ready": NodeRunStatus.READY.value,
        "running": NodeRunStatus.RUNNING.value,
        "resume": resume,
        "id": node_run_id,
        "now": clock.now(),
        "grace": settings.ENGINE_LEASE_GRACE_S,
        "task_id": task_id,
        "worker": worker,
    }
    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM_SQL, params)
            row = cursor.fetchone()
    else:
        row = _claim_one_round_trip(params)
    if row is None:
        return None
    (
        pk,
        org_id,
        run_id,
        node_key,
        attempt,
        started_at,
        lease_until,
        idempotency_key,
        workflow_id,
        revision_id,
        context,
        created_by_id,
    ) = row
    run = WorkflowRun(
        id=run_id,
        org_id=org_id,
        workflow_id=workflow_id,
        revision_id=revision_id,
        # Django's backend leaves jsonb undecoded on raw cursors (JSONField decodes itself).
        context=json.loads(context) if isinstance(context, str) else context,
        created_by_id=created_by_id,
    )
    node_run = NodeRun(
        id=pk,
        org_id=org_id,
        run_id=run_id,
        node_key=node_key,
        attempt=attempt,
        started_at=started_at,
        lease_until=lease_until,
        idempotency_key=idempotency_key,
        status=NodeRunStatus.RUNNING,
    )
    graph = graph_of(run)
    return Attempt(node_run=node_run, run=run, graph=graph, node=graph.nodes[node_key])


def node_run_execute(
    *, node_run_id: int, task_id: str = "", worker: str = "", resume: bool = False
) -> None:
    """One attempt of one node run: claim it, run its kind, record what happened.

    A database error escapes only from the claim, before the kind runs; the outcome of a kind
    that ran is recorded through an outage (or left to the reaper), never dropped by raising.
    """
    attempt = node_run_claim(node_run_id=node_run_id, task_id=task_id, worker=worker, resume=resume)
    if attempt is None:
        return
    try:
        outcome = _run_kind(attempt)
    except Exception as exc:  # noqa: BLE001 - any crash of a kind is a system failure
        logger.exception("node %s of run %s crashed", attempt.node.key, attempt.run.pk)
        outcome = kinds.TransientError(CRASH, f"{type(exc).__name__}: {exc}")
    _complete_through_outage(attempt=attempt, outcome=outcome)


def _complete_through_outage(*, attempt: Attempt, outcome) -> None:
    """Record the outcome, waiting for the database if it is away: the kind has run (a portal
    may have been written to), so its result is kept rather than dropped with the message.

    The waiting ends with the lease: past it the reaper takes the attempt back and a late
    record would find its claim gone anyway.
    """
    # A running attempt's lease is set by its claim (_CLAIM_SQL) and cleared only as it ends.
    lease_until = cast(datetime, attempt.node_run.lease_until)
    try:
        outage.retry_while_unreachable(
            lambda: node_run_complete(attempt=attempt, outcome=outcome),
            until=lambda: clock.now() >= lease_until,
            what=f"recording attempt {attempt.node_run.attempt} of node run {attempt.node_run.pk}",
        )
    except outage.DatabaseUnreachable:
        logger.error(
            "attempt %s of node run %s: outcome not recorded, the database stayed unreachable "
            "for the whole lease; the reaper will retry the node",
            attempt.node_run.attempt,
            attempt.node_run.pk,
        )


def _run_kind(attempt: Attempt):
    node, node_run = attempt.node, attempt.node_run
    if node.node_type == NodeType.ENTRY:
        return kinds.NodeResult(output={})
    if node.node_type == NodeType.OUTCOME:
        return kinds.NodeResult(output={"result": node.outcome_result})
    kind = kinds.get(node.kind or "decision")
    if kind is None:
        return kinds.PermanentError("unknown_kind", f"no node kind {node.kind!r} is registered")
    now = clock.now()
    context = kinds.ExecutionContext(
        org_id=attempt.run.org_id,
        run_id=attempt.run.pk,
        node_run_id=node_run.pk,
        node_key=node.key,
        attempt=node_run.attempt,
        idempotency_key=str(node_run.idempotency_key),
        config=node.config,
        context=attempt.run.context,
        deadline=now + timedelta(seconds=node.effective_timeout_s),
        first_started_at=node_run.started_at or now,
        now=now,
    )
    try:
        result = kind.execute(context)
    except (
        kinds.BusinessFailure,
        kinds.TransientError,
        kinds.PermanentError,
        kinds.WaitUntil,
    ) as signal:
        return signal
    except _soft_time_limit() as exc:
        return kinds.TransientError(TIMEOUT, f"no result within {node.effective_timeout_s}s: {exc}")
    if clock.now() > context.deadline:
        return kinds.TransientError(TIMEOUT, f"no result within {node.effective_timeout_s}s")
    return result


def _soft_time_limit():
    from celery.exceptions import SoftTimeLimitExceeded

    return SoftTimeLimitExceeded


# -- recording the outcome ------------------------------------------------------------------


def node_run_complete(*, attempt: Attempt, outcome) -> None:
    """Record one attempt's outcome, if the claim still holds, and move the run on."""
    with transaction.atomic():
        # The run lock serialises every writer of this run's node runs that matters here
        # (completions, the reaper); a claim only moves ready rows, never this running one.
        run, node_runs = _run_locked(attempt.run.pk)
        # The input as the claim read it (the lock's read leaves the JSON in the database): the
        # values masked out of this attempt's error, output and trace.
        run.input = (attempt.run.context or {}).get("input") or {}
        node_run = node_runs[attempt.node.key]
        if node_run.status != NodeRunStatus.RUNNING or node_run.attempt != attempt.node_run.attempt:
            logger.warning(
                "attempt %s of node run %s lost its claim", attempt.node_run.attempt, node_run.pk
            )
            return
        if isinstance(outcome, Exception):
            _mask_message(outcome, declared=run.input)
        node_run_record(
            run=run,
            node_run=node_run,
            graph=attempt.graph,
            node=attempt.node,
            outcome=outcome,
            duration_ms=_elapsed_ms(attempt.started),
            node_runs=node_runs,
        )


def _mask_message(error: Exception, *, declared: dict) -> None:
    """Patient data out of an error's text before it is stored (node run, trace, run, batch
    row): a template or a portal that failed on a row often quotes the row. The row's own
    values are declared; SSNs, dates, phones, emails and member IDs are masked by pattern."""
    text = str(error)
    masked = phi.mask(text, declared=declared)
    if masked != text:
        error.args = (masked,)


# What deciding needs of a run and its node runs. The JSON (input, context, outputs) stays in
# the database: it grows with the run, and decoding it at every step would cost more than the
# step. Two statements, not one join: a statement that waited for the run's lock still reads
# the other tables as they were when it began, so a join would miss the node run whose
# completion it waited for, and a join node would never be decided.
_LOCK_SQL = """
SELECT org_id, workflow_id, revision_id, status, cancel_requested, created_by_id, started_at,
       created_at, batch_job_item_id
  FROM workflow_run WHERE id = %s FOR UPDATE
"""
_NODE_RUNS_SQL = """
SELECT id, node_key, status, label, attempt, error, ended_at FROM node_run WHERE run_id = %s
"""


def _run_locked(run_id: int) -> tuple[WorkflowRun, dict[str, NodeRun]]:
    with connection.cursor() as cursor:
        # One message, two statements: each takes its own snapshot, the second after the first
        # holds the lock.
        cursor.execute(_LOCK_SQL + ";" + _NODE_RUNS_SQL, [run_id, run_id])
        (
            org_id,
            workflow_id,
            revision_id,
            status,
            cancel,
            created_by_id,
            started,
            created,
            item_id,
        ) = cursor.fetchone()
        cursor.nextset()
        rows = cursor.fetchall()
    run = WorkflowRun(
        id=run_id,
        org_id=org_id,
        workflow_id=workflow_id,
        revision_id=revision_id,
        status=status,
        cancel_requested=cancel,
        created_by_id=created_by_id,
        started_at=started,
        created_at=created,
        batch_job_item_id=item_id,
        # Written key by key (node_run_completion_write), never read back here.
        context={"nodes": {}},
    )
    node_runs = {
        key: NodeRun(
            id=pk,
            org_id=org_id,
            run_id=run_id,
            node_key=key,
            status=node_status,
            label=label,
            attempt=attempt,
            error=error,
            ended_at=ended_at,
        )
        for pk, key, node_status, label, attempt, error, ended_at in rows
    }
    return run, node_runs


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _attempt_unfinished_save(
    run, node_run, node: Node, *, fields: list[str], duration_ms: int, error: str, detail: dict
) -> None:
    """Save the node run's changed ``fields`` (its lease given back) and trace the attempt as
    one that did not complete its node."""
    node_run.save(update_fields=[*fields, "lease_until", "updated_at"])
    attempt_trace_write(
        run, node_run, node, success=False, duration_ms=duration_ms, error=error, detail=detail
    )


def node_run_record(
    *, run, node_run, graph: Graph, node: Node, outcome, duration_ms: int, node_runs=None
) -> None:
    """Write one attempt's outcome. ``node_runs``: the run's node runs, if already loaded."""
    now = clock.now()
    node_run.lease_until = None
    node_run.updated_at = now
    if run.status in RUN_TERMINAL:
        # The run timed out or was cancelled while this attempt ran: its result goes nowhere.
        node_run.status = NodeRunStatus.CANCELLED
        node_run.ended_at = now
        _attempt_unfinished_save(
            run,
            node_run,
            node,
            fields=["status", "ended_at"],
            duration_ms=duration_ms,
            error=f"run already {run.status}",
            detail={"discarded": True},
        )
        return
    finished = isinstance(outcome, kinds.NodeResult | kinds.BusinessFailure)
    if run.cancel_requested and not finished:
        # Cancelling starts nothing new: no retry, no coming back after a wait.
        node_run.status = NodeRunStatus.CANCELLED
        node_run.ended_at = now
        node_run.error = "cancelled on request"
        _attempt_unfinished_save(
            run,
            node_run,
            node,
            fields=["status", "ended_at", "error"],
            duration_ms=duration_ms,
            error=str(outcome),
            detail={"cancelled": True},
        )
        run_propagate(run=run, graph=graph, changed=[node.key], node_runs=node_runs)
        return
    if isinstance(outcome, kinds.WaitUntil):
        # Not an attempt that failed: give the attempt back and come back later.
        node_run.status = NodeRunStatus.READY
        node_run.attempt -= 1
        node_run.not_before = outcome.when
        node_run.save(
            update_fields=["status", "attempt", "not_before", "lease_until", "updated_at"]
        )
        dispatch.enqueue(node_run, node, countdown=(outcome.when - now).total_seconds())
        return
    if isinstance(outcome, kinds.NodeResult | kinds.BusinessFailure):
        business = isinstance(outcome, kinds.BusinessFailure)
        node_run.status = NodeRunStatus.COMPLETED
        node_run.label = outcome.label
        node_run.error = str(outcome) if business else ""
        node_run.ended_at = now
        node_run_completion_write(
            run=run,
            node_run=node_run,
            node=node,
            output=outcome.output,
            success=not business,
            duration_ms=duration_ms,
            detail={"label": outcome.label, "business_failure": business},
        )
        run_propagate(run=run, graph=graph, changed=[node.key], node_runs=node_runs)
        return
    _record_failure(
        run=run,
        node_run=node_run,
        graph=graph,
        node=node,
        error=outcome,
        duration_ms=duration_ms,
        node_runs=node_runs,
    )


def _record_failure(*, run, node_run, graph, node, error, duration_ms: int, node_runs=None) -> None:
    """A system failure: retry per the policy, or fail the node for good."""
    now = clock.now()
    kind = getattr(error, "kind", CRASH)
    policy = RetryPolicy.from_config(node.retry_policy)
    retry = isinstance(error, kinds.TransientError) and policy.retries(
        attempt=node_run.attempt, error_kind=kind
    )
    node_run.error = str(error)
    node_run.error_kind = kind
    node_run.lease_until = None
    node_run.updated_at = now
    if retry:
        delay = policy.delay_s(attempt=node_run.attempt)
        node_run.status = NodeRunStatus.READY
        node_run.not_before = now + timedelta(seconds=delay)
        _attempt_unfinished_save(
            run,
            node_run,
            node,
            fields=["status", "error", "error_kind", "not_before"],
            duration_ms=duration_ms,
            error=str(error),
            detail={"error_kind": kind, "retry_in_s": round(delay, 3)},
        )
        dispatch.enqueue(node_run, node, countdown=delay)
        return
    node_run.status = NodeRunStatus.FAILED
    node_run.ended_at = now
    _attempt_unfinished_save(
        run,
        node_run,
        node,
        fields=["status", "error", "error_kind", "ended_at"],
        duration_ms=duration_ms,
        error=str(error),
        detail={"error_kind": kind, "final": True},
    )
    run_propagate(run=run, graph=graph, changed=[node.key], node_runs=node_runs)
