"""Reads of runs, node runs and traces."""

from __future__ import annotations

from django.db.models import Prefetch

from workflows.models import NodeRun, WorkflowRun, WorkflowTrace


def run_list(*, workflow_id=None, status: str | None = None, since=None, until=None):
    runs = WorkflowRun.objects.select_related("revision")
    if workflow_id is not None:
        runs = runs.filter(workflow_id=workflow_id)
    if status:
        runs = runs.filter(status=status)
    if since is not None:
        runs = runs.filter(created_at__gte=since)
    if until is not None:
        runs = runs.filter(created_at__lt=until)
    return runs


def run_detail_queryset():
    return WorkflowRun.objects.select_related("revision").prefetch_related(
        Prefetch("node_runs", queryset=NodeRun.objects.order_by("id"))
    )


def trace_list(*, run_id=None, workflow_id=None, since=None, until=None):
    traces = WorkflowTrace.objects.all()
    if run_id is not None:
        traces = traces.filter(run_id=run_id)
    if workflow_id is not None:
        traces = traces.filter(workflow_id=workflow_id)
    if since is not None:
        traces = traces.filter(created_at__gte=since)
    if until is not None:
        traces = traces.filter(created_at__lt=until)
    return traces
