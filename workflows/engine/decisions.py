"""Deciding what runs next: the state of each edge, which nodes run or are skipped (trigger
rules, joins, dead paths), and the run's end (its status, result and counters).

Every function here runs with the run row locked (a completion and the reaper lock it,
workflows/engine/attempts.py and recovery.py; a cancel too, workflows/services/runs.py) or on
a run nobody else sees yet (a new one), so that two parallel branches finishing together
decide their join exactly once.
"""

from __future__ import annotations

from enum import StrEnum

from django.db.models import F

from rcm import clock
from workflows.engine import dispatch, hooks, kinds
from workflows.engine.completion import node_run_completion_write
from workflows.engine.graph import Graph, Node
from workflows.models import (
    NodeRun,
    NodeRunStatus,
    RunResult,
    RunStatus,
    TaskSignature,
    TaskType,
    TriggerRule,
    WorkflowRun,
    WorkflowTransition,
)
from workflows.models.runs import NODE_TERMINAL


class EdgeState(StrEnum):
    """What an edge says of its target, from the node run of its source. Listed from the one
    that counts most to the least, for a source that reaches its target by several edges."""

    OPEN = "open"  # the source has not finished
    FIRED = "fired"
    FAILED = "failed"  # the source failed for good and the edge is not its error edge
    DEAD = "dead"  # the source finished on another label, or was skipped or cancelled


def edge_state(edge, node_runs: dict[str, NodeRun]) -> EdgeState:
    """The edge's state now. Also what a run's picture asks of each edge
    (workflows/selectors/runs.py), so both read "fired" the same way."""
    source = node_runs[edge.source]
    if source.status not in NODE_TERMINAL:
        return EdgeState.OPEN
    if source.status == NodeRunStatus.COMPLETED and source.label == edge.label:
        return EdgeState.FIRED
    if source.status == NodeRunStatus.FAILED:
        return EdgeState.FIRED if edge.label == kinds.ERROR_LABEL else EdgeState.FAILED
    return EdgeState.DEAD


def _incoming_states(edges, node_runs: dict[str, NodeRun]) -> list[EdgeState]:
    """The states of a node's incoming edges, one per source: a source that reached this node
    by one edge (its ``error`` edge, say) has not also "failed" it by another."""
    by_source: dict[str, list[EdgeState]] = {}
    for edge in edges:
        by_source.setdefault(edge.source, []).append(edge_state(edge, node_runs))
    order = list(EdgeState)
    return [min(states, key=order.index) for states in by_source.values()]


def _should_run(rule: str, states: list[EdgeState]) -> bool:
    fired = states.count(EdgeState.FIRED)
    if rule == TriggerRule.ALL_SUCCESS:
        return fired == len(states)
    if rule == TriggerRule.ALL_DONE:
        # Every upstream is done; the node runs unless its whole way in is a dead path.
        return any(state in (EdgeState.FIRED, EdgeState.FAILED) for state in states)
    return fired > 0 and EdgeState.FAILED not in states  # none_failed_min_one_success


def run_begin(*, run: WorkflowRun, graph: Graph, node_runs: dict[str, NodeRun]) -> None:
    """Complete the entry node of a new run and release what follows it."""
    entry = graph.entries[0]
    _complete_inline(run, node_runs[entry.key], entry)
    run_propagate(run=run, graph=graph, changed=[entry.key], node_runs=node_runs)


def _complete_inline(run: WorkflowRun, node_run: NodeRun, node: Node) -> None:
    """Entry and outcome nodes do no work of their own: they complete where they are decided,
    in the deciding transaction, without a message and a worker's round trip."""
    now = clock.now()
    output = {"result": node.outcome_result} if node.is_outcome else {}
    node_run.status = NodeRunStatus.COMPLETED
    node_run.label = kinds.SUCCESS
    node_run.attempt = 1
    node_run.ended_at = now
    node_run_completion_write(
        run=run,
        node_run=node_run,
        node=node,
        output=output,
        success=True,
        duration_ms=0,
        detail={"label": kinds.SUCCESS, "inline": True},
    )


def run_propagate(
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
        if EdgeState.OPEN in states:
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
        dispatch.enqueue(node_run, graph.nodes[node_run.node_key])
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
    # A run that reached several outcomes (parallel branches) failed if any of them did.
    results = {graph.nodes[nr.node_key].outcome_result for nr in reached}
    result: str = ""
    if reached:
        result = RunResult.FAILURE if RunResult.FAILURE in results else RunResult.SUCCESS
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
        run=run,
        graph=graph,
        succeeded=status == RunStatus.COMPLETED and result == RunResult.SUCCESS,
    )
    hooks.run_finished_announce(
        hooks.RunFinished(run=run, status=status, result=result, error=error)
    )


def _count_traversals(*, graph: Graph, node_runs: dict[str, NodeRun]) -> None:
    """Add this run's traversals to the draft edges still there (once per run, at its end,
    so that concurrent runs do not queue on the same edge rows at every step)."""
    fired = [e.id for e in graph.edges if e.id and edge_state(e, node_runs) == EdgeState.FIRED]
    if fired:
        WorkflowTransition.objects.filter(pk__in=fired).update(freq=F("freq") + 1)


def _count_signature(*, run: WorkflowRun, graph: Graph, succeeded: bool) -> None:
    if not graph.task_type_id:
        return
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
