"""Reads of runs, node runs and traces."""

from __future__ import annotations

from django.db.models import Prefetch

from rcm import phi
from rcm.db.filters import filter_given
from workflows.engine.decisions import edge_state
from workflows.engine.graph import Graph
from workflows.models import NodeRun, WorkflowRun, WorkflowTrace


def _runs():
    # The revision for its number only: its graph snapshot is the largest column of the row.
    return WorkflowRun.objects.select_related("revision").defer("revision__graph")


def run_list(*, workflow_id=None, status: str | None = None, since=None, until=None):
    return filter_given(
        _runs(),
        workflow_id=workflow_id,
        status=status,
        created_at__gte=since,
        created_at__lt=until,
    )


def run_detail_queryset():
    return _runs().prefetch_related(Prefetch("node_runs", queryset=NodeRun.objects.order_by("id")))


def run_context_shown(*, run: WorkflowRun) -> dict:
    """A run's context as people read it: the input as given (the caller's own row), each
    node's output and label masked as its node run and traces keep them. The stored context
    keeps the working values, which later nodes' templates read (docs/workflows.md)."""
    context = run.context or {}
    return {**context, "nodes": phi.mask_json(context.get("nodes") or {}, declared=run.input)}


def trace_list(*, run_id=None, workflow_id=None, since=None, until=None):
    return filter_given(
        WorkflowTrace.objects.all(),
        run_id=run_id,
        workflow_id=workflow_id,
        created_at__gte=since,
        created_at__lt=until,
    )


def run_edges_taken(*, run: WorkflowRun) -> set[tuple[str, str]]:
    """The (source, target) pairs of the run's revision whose transition fired: its source
    finished with the transition's label (or failed, for an ``error`` transition), as the
    engine decides it. Read from the node runs' statuses and labels (one query)."""
    graph = Graph.from_snapshot(run.revision.graph)
    node_runs = {
        node_run.node_key: node_run
        for node_run in NodeRun.objects.filter(run=run).only("node_key", "status", "label")
    }
    return {
        (edge.source, edge.target)
        for edge in graph.edges
        if edge.source in node_runs and edge_state(edge, node_runs) == "fired"
    }
