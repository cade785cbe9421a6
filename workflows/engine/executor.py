"""Executing node runs: claim, run the kind, record the result, decide what runs next.

Durability rules (DESIGN §6):

* The state is in PostgreSQL. A Celery message only says "execute node run N"; it is sent
  after the transaction that made N ready commits.
* A node run is claimed with a conditional UPDATE (ready -> running, attempt + 1, a lease):
  a message delivered twice, or a stale one, claims nothing and does nothing.
* The result is written only if the claim still holds (same attempt, still running): an attempt
  the reaper has taken back (its worker died) cannot complete after the fact.
* Completions of one run are serialised by a lock on the run row, so that two parallel
  branches finishing together decide their join exactly once.
* A lost attempt counts as a failed attempt of kind ``worker_lost`` and is retried per the
  node's policy, like any system failure. It is taken back as soon as it is known to be lost:
  by the worker's main process when Celery reports the pool process running it gone, by a
  worker restarted under the same node name, and in any case by the reaper once its lease ends.
* The database going away for a while loses no result: the outcome of an attempt that ran is
  recorded once the database answers again (rcm.db.outage), within the attempt's lease.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F

from rcm import clock, messaging, phi
from rcm.celery import app as celery_app
from rcm.context import require_org_id
from rcm.db import outage
from workflows.engine import hooks, kinds
from workflows.engine.graph import Graph, Node
from workflows.engine.retry import RetryPolicy
from workflows.models import (
    NodeRun,
    NodeRunStatus,
    NodeType,
    RunStatus,
    TaskSignature,
    TriggerRule,
    WorkflowRevision,
    WorkflowRun,
    WorkflowTrace,
)
from workflows.models.runs import NODE_TERMINAL, RUN_TERMINAL

logger = logging.getLogger(__name__)

WORKER_LOST = "worker_lost"
# Longest a message may wait on the broker before it is due (retries are capped at this in
# workflows/engine/retry.py; longer waits go through the reaper instead).
MAX_COUNTDOWN_S = 3600
TIMEOUT = "timeout"
CRASH = "crash"


# -- the revision graph, cached: revisions never change --------------------------------------


@functools.lru_cache(maxsize=512)
def graph_of_revision(revision_id: int, workflow_id) -> Graph:
    # Keyed with the workflow's random UUID too: a revision id alone can come back after a
    # database is emptied and its sequences restarted (the test suite does that).
    snapshot = WorkflowRevision.objects.filter(pk=revision_id, workflow_id=workflow_id)
    return Graph.from_snapshot(snapshot.values_list("graph", flat=True).get())


def graph_of(run: WorkflowRun) -> Graph:
    return graph_of_revision(run.revision_id, run.workflow_id)


# -- enqueueing -----------------------------------------------------------------------------


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


# -- claiming and executing -----------------------------------------------------------------


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
       SET status = 'running', attempt = attempt + (status = 'ready')::int,
           started_at = coalesce(started_at, %(now)s),
           lease_until = %(now)s + make_interval(secs => timeout_s + %(grace)s),
           claim_task_id = %(task_id)s, claim_worker = %(worker)s, updated_at = %(now)s
     WHERE id = %(id)s
       AND (status = 'ready' AND (not_before IS NULL OR not_before <= %(now)s)
            OR status = 'running' AND %(resume)s AND claim_task_id = %(task_id)s)
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
    lasts for. The organization goes in as a literal (a UUID, checked by rcm.context).
    """
    org_id = require_org_id()
    connection.ensure_connection()
    # Django's error wrapper around the driver's own cursor: a lost connection is then a
    # django.db.OperationalError, which the task's wait for the database recognises
    # (rcm/db/outage.py), and the connection is marked as having failed.
    with connection.wrap_database_errors, connection.connection.cursor() as cursor:
        cursor.execute(
            f"SELECT set_config('app.current_org_id', '{uuid.UUID(str(org_id))}', true); "
            + _CLAIM_SQL,
            params,
        )
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
        return kinds.NodeResult(output={"result": node.config.get("result", "success")})
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
        _record(
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
        context={"nodes": {}},  # written key by key (_completion_write), never read back here
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


def _record(
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
        node_run.save(update_fields=["status", "ended_at", "lease_until", "updated_at"])
        _trace(
            run,
            node_run,
            node,
            success=False,
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
        node_run.save(update_fields=["status", "ended_at", "error", "lease_until", "updated_at"])
        _trace(
            run,
            node_run,
            node,
            success=False,
            duration_ms=duration_ms,
            error=str(outcome),
            detail={"cancelled": True},
        )
        _propagate(run=run, graph=graph, changed=[node.key], node_runs=node_runs)
        return
    if isinstance(outcome, kinds.WaitUntil):
        # Not an attempt that failed: give the attempt back and come back later.
        node_run.status = NodeRunStatus.READY
        node_run.attempt -= 1
        node_run.not_before = outcome.when
        node_run.save(
            update_fields=["status", "attempt", "not_before", "lease_until", "updated_at"]
        )
        enqueue(node_run, node, countdown=(outcome.when - now).total_seconds())
        return
    if isinstance(outcome, kinds.NodeResult | kinds.BusinessFailure):
        business = isinstance(outcome, kinds.BusinessFailure)
        node_run.status = NodeRunStatus.COMPLETED
        node_run.label = outcome.label
        node_run.error = str(outcome) if business else ""
        node_run.ended_at = now
        _completion_write(
            run=run,
            node_run=node_run,
            node=node,
            output=outcome.output,
            success=not business,
            duration_ms=duration_ms,
            detail={"label": outcome.label, "business_failure": business},
        )
        _propagate(run=run, graph=graph, changed=[node.key], node_runs=node_runs)
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


# A node's completion in one statement: its row, its entry in the run's context, its trace.
# It is every step's write, so one round trip instead of three is worth the SQL.
_COMPLETION_SQL = """
WITH node AS (
    UPDATE node_run
       SET status = %(status)s, label = %(label)s, output = %(output)s::jsonb, error = %(error)s,
           attempt = greatest(attempt, 1), started_at = coalesce(started_at, %(now)s),
           error_kind = '', not_before = NULL,
           ended_at = %(now)s, lease_until = NULL, updated_at = %(now)s
     WHERE id = %(node_run_id)s
), context AS (
    UPDATE workflow_run
       SET context = jsonb_set(context, ARRAY['nodes', %(key)s], %(entry)s::jsonb),
           updated_at = %(now)s
     WHERE id = %(run_id)s
)
INSERT INTO workflow_trace (
    org_id, workflow_id, run_id, node_run_id, node_key, attempt, action_type, action_detail,
    success, duration_ms, error_detail, llm_prompt, llm_response, llm_model, tier_reason,
    user_id, session_id, created_at)
VALUES (%(org_id)s, %(workflow_id)s, %(run_id)s, %(node_run_id)s, %(key)s, %(attempt)s,
        %(action_type)s, %(detail)s::jsonb, %(success)s, %(duration_ms)s, %(error)s, '', '', '',
        '', %(user_id)s, '', %(now)s)
"""


def _completion_write(
    *, run, node_run, node: Node, output: dict, success: bool, duration_ms: int, detail: dict
) -> None:
    # The context keeps the working output: later nodes' templates read it, and a batch row's
    # results are taken from it. The node run's copy and the trace are what people read.
    entry = {"output": output, "label": node_run.label}
    run.context.setdefault("nodes", {})[node.key] = entry
    shown_output, shown_detail = _masked(run, [output, {"node_type": node.node_type, **detail}])
    with connection.cursor() as cursor:
        cursor.execute(
            _COMPLETION_SQL,
            {
                "status": node_run.status,
                "label": node_run.label,
                "output": json.dumps(shown_output, cls=DjangoJSONEncoder),
                "error": node_run.error[:4000],
                "now": node_run.ended_at,
                "node_run_id": node_run.pk,
                "key": node.key,
                "entry": json.dumps(entry, cls=DjangoJSONEncoder),
                "run_id": run.pk,
                "org_id": run.org_id,
                "workflow_id": run.workflow_id,
                "attempt": max(node_run.attempt, 1),
                "action_type": f"node.{node.kind or node.node_type}",
                "detail": json.dumps(shown_detail, cls=DjangoJSONEncoder),
                "success": success,
                "duration_ms": duration_ms,
                "user_id": run.created_by_id,
            },
        )


def _complete_inline(run: WorkflowRun, node_run: NodeRun, node: Node) -> None:
    """Entry and outcome nodes do no work of their own: they complete where they are decided,
    in the deciding transaction, without a message and a worker's round trip."""
    now = clock.now()
    output = {"result": node.config.get("result", "success")} if node.is_outcome else {}
    node_run.status = NodeRunStatus.COMPLETED
    node_run.label = kinds.SUCCESS
    node_run.attempt = 1
    node_run.ended_at = now
    _completion_write(
        run=run,
        node_run=node_run,
        node=node,
        output=output,
        success=True,
        duration_ms=0,
        detail={"label": kinds.SUCCESS, "inline": True},
    )


def run_begin(*, run: WorkflowRun, graph: Graph, node_runs: dict[str, NodeRun]) -> None:
    """Complete the entry node of a new run and release what follows it."""
    entry = graph.entries[0]
    _complete_inline(run, node_runs[entry.key], entry)
    _propagate(run=run, graph=graph, changed=[entry.key], node_runs=node_runs)


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
        node_run.save(
            update_fields=[
                "status",
                "error",
                "error_kind",
                "not_before",
                "lease_until",
                "updated_at",
            ]
        )
        _trace(
            run,
            node_run,
            node,
            success=False,
            duration_ms=duration_ms,
            error=str(error),
            detail={"error_kind": kind, "retry_in_s": round(delay, 3)},
        )
        enqueue(node_run, node, countdown=delay)
        return
    node_run.status = NodeRunStatus.FAILED
    node_run.ended_at = now
    node_run.save(
        update_fields=["status", "error", "error_kind", "ended_at", "lease_until", "updated_at"]
    )
    _trace(
        run,
        node_run,
        node,
        success=False,
        duration_ms=duration_ms,
        error=str(error),
        detail={"error_kind": kind, "final": True},
    )
    _propagate(run=run, graph=graph, changed=[node.key], node_runs=node_runs)


# -- deciding what runs next ----------------------------------------------------------------


def edge_state(edge, node_runs: dict[str, NodeRun]) -> str:
    """fired | failed | dead | open (its source has not finished). Also what a run's picture
    asks of each edge (workflows/selectors/runs.py), so both read "fired" the same way."""
    source = node_runs[edge.source]
    if source.status not in NODE_TERMINAL:
        return "open"
    if source.status == NodeRunStatus.COMPLETED and source.label == edge.label:
        return "fired"
    if source.status == NodeRunStatus.FAILED:
        return "fired" if edge.label == kinds.ERROR_LABEL else "failed"
    return "dead"


def _incoming_states(edges, node_runs: dict[str, NodeRun]) -> list[str]:
    """The states of a node's incoming edges, one per source: a source that reached this node
    by one edge (its ``error`` edge, say) has not also "failed" it by another."""
    by_source: dict[str, list[str]] = {}
    for edge in edges:
        by_source.setdefault(edge.source, []).append(edge_state(edge, node_runs))
    order = ("open", "fired", "failed", "dead")
    return [min(states, key=order.index) for states in by_source.values()]


def _should_run(rule: str, states: list[str]) -> bool:
    fired = states.count("fired")
    if rule == TriggerRule.ALL_SUCCESS:
        return fired == len(states)
    if rule == TriggerRule.ALL_DONE:
        # Every upstream is done; the node runs unless its whole way in is a dead path.
        return any(state in ("fired", "failed") for state in states)
    return fired > 0 and "failed" not in states  # none_failed_min_one_success


def _propagate(
    *, run: WorkflowRun, graph: Graph, changed: list[str], node_runs: dict | None = None
) -> None:
    """Decide every node whose incoming edges are now all decided; finish the run if done.

    Runs with the run row locked. Skips cascade: a skipped node's edges are dead.
    """
    if node_runs is None:
        node_runs = {nr.node_key: nr for nr in NodeRun.objects.filter(run_id=run.pk)}
    now = clock.now()
    pending = [edge.target for key in changed for edge in graph.outgoing[key]]
    to_enqueue, skipped = [], []
    while pending:
        target = pending.pop()
        node_run = node_runs[target]
        if node_run.status != NodeRunStatus.PENDING:
            continue
        states = _incoming_states(graph.incoming[target], node_runs)
        if "open" in states:
            continue
        node = graph.nodes[target]
        if not run.cancel_requested and _should_run(node.trigger_rule, states):
            if node.is_outcome:
                _complete_inline(run, node_run, node)
                continue
            node_run.status = NodeRunStatus.READY
            to_enqueue.append(node_run)
        else:
            node_run.status = NodeRunStatus.SKIPPED
            node_run.ended_at = now
            node_run.error = "cancelled" if run.cancel_requested else "no incoming edge fired"
            skipped.append(node_run)
            pending.extend(edge.target for edge in graph.outgoing[target])
    if to_enqueue:
        NodeRun.objects.filter(pk__in=[nr.pk for nr in to_enqueue]).update(
            status=NodeRunStatus.READY, updated_at=now
        )
    for node_run in to_enqueue:
        enqueue(node_run, graph.nodes[node_run.node_key])
    for error in {nr.error for nr in skipped}:
        NodeRun.objects.filter(pk__in=[nr.pk for nr in skipped if nr.error == error]).update(
            status=NodeRunStatus.SKIPPED, ended_at=now, updated_at=now, error=error
        )
    if not any(nr.status not in NODE_TERMINAL for nr in node_runs.values()):
        run_finish(run=run, graph=graph, node_runs=node_runs)


def run_finish(*, run: WorkflowRun, graph: Graph, node_runs: dict[str, NodeRun]) -> None:
    """Every node is decided: the run's status, result, counters and traversal counts."""
    now = clock.now()
    reached = sorted(
        (
            nr
            for key, nr in node_runs.items()
            if graph.nodes[key].is_outcome and nr.status == NodeRunStatus.COMPLETED
        ),
        key=lambda nr: (nr.ended_at or now, nr.pk),
    )
    failed = [nr for nr in node_runs.values() if nr.status == NodeRunStatus.FAILED]
    if run.cancel_requested:
        status, error = RunStatus.CANCELLED, "cancelled on request"
    elif reached:
        status, error = RunStatus.COMPLETED, ""
    else:
        status = RunStatus.FAILED
        error = "; ".join(f"{nr.node_key}: {nr.error}" for nr in failed) or "no outcome reached"
    results = [graph.nodes[nr.node_key].config.get("result", "success") for nr in reached]
    result = ("failure" if "failure" in results else "success") if reached else ""
    started = run.started_at or run.created_at
    WorkflowRun.objects.filter(pk=run.pk).update(
        status=status,
        outcome=reached[0].node_key if reached else "",
        result=result,
        error=error[:2000],
        ended_at=now,
        duration_ms=max(0, int((now - started).total_seconds() * 1000)),
        updated_at=now,
    )
    _count_traversals(graph=graph, node_runs=node_runs)
    _count_signature(
        run=run, graph=graph, succeeded=status == RunStatus.COMPLETED and result == "success"
    )
    hooks.run_finished_announce(
        hooks.RunFinished(run=run, status=status, result=result, error=error)
    )


def _count_traversals(*, graph: Graph, node_runs: dict[str, NodeRun]) -> None:
    """Add this run's traversals to the draft edges still there (once per run, at its end,
    so that concurrent runs do not queue on the same edge rows at every step)."""
    from workflows.models import WorkflowTransition

    fired = [e.id for e in graph.edges if e.id and edge_state(e, node_runs) == "fired"]
    if fired:
        WorkflowTransition.objects.filter(pk__in=fired).update(freq=F("freq") + 1)


def _count_signature(*, run: WorkflowRun, graph: Graph, succeeded: bool) -> None:
    if not graph.task_type_id:
        return
    from workflows.models import TaskType

    task_type = TaskType.objects.filter(pk=graph.task_type_id).first()
    if task_type is None:
        return
    signature, _ = TaskSignature.objects.get_or_create(
        org_id=run.org_id,
        endpoint_id=graph.endpoint_id,
        domain_id=task_type.domain_id,
        action_id=task_type.action_id,
        defaults={"source_id": "system_learned"},
    )
    updates = {"total_runs": F("total_runs") + 1, "updated_at": clock.now()}
    if succeeded:
        updates["success_runs"] = F("success_runs") + 1
    if run.created_by_id is not None:
        updates["last_human_run"] = clock.now()
    TaskSignature.objects.filter(pk=signature.pk).update(**updates)


# -- traces ---------------------------------------------------------------------------------


def _masked(run: WorkflowRun, value):
    """``value`` as stored for people to read (a node run's output, a trace's detail): patient
    data masked by shape, and the run's input values as declared literals (rcm.phi), as error
    texts are (``_mask_message``)."""
    return phi.mask_json(value, declared=run.input or {})


def _trace(
    run,
    node_run,
    node: Node,
    *,
    success: bool,
    duration_ms: int,
    error: str = "",
    detail: dict | None = None,
) -> None:
    WorkflowTrace.objects.create(
        org_id=run.org_id,
        workflow_id=run.workflow_id,
        run_id=run.pk,
        node_run_id=node_run.pk,
        node_key=node.key,
        attempt=max(node_run.attempt, 1),
        action_type=f"node.{node.kind or node.node_type}",
        action_detail=_masked(run, {"node_type": node.node_type, **(detail or {})}),
        success=success,
        duration_ms=duration_ms,
        error_detail=error[:4000],
        user_id=run.created_by_id,
    )


# -- recovery (the reaper, lost pool processes, restarted workers) ---------------------------

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
        _record(run=run, node_run=node_run, graph=graph, node=node, outcome=lost, duration_ms=0)
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
        enqueue(node_run, graph_of(run).nodes[node_run.node_key])


def run_expire(*, run_id: int) -> bool:
    """A run past its deadline: status timeout; nothing new starts (running attempts finish
    and are discarded)."""
    with transaction.atomic():
        run = WorkflowRun.objects.select_for_update().get(pk=run_id)
        if run.status in RUN_TERMINAL or run.deadline_at is None or run.deadline_at > clock.now():
            return False
        now = clock.now()
        NodeRun.objects.filter(run=run, status__in=["pending", "ready"]).update(
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
