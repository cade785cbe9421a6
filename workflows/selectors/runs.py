"""Reads of runs, node runs and traces, and what a new run needs: the revision it runs and the
check of its input (``InputCheck``, which reads the task's effective requirements)."""

from __future__ import annotations

from django.db.models import Prefetch

from rcm import clock, phi
from rcm.db.filters import filter_given
from rcm.errors import Conflict
from rcm.lookups import WorkflowStatus
from tenants import selectors as tenant_selectors
from workflows.engine.decisions import EdgeState, edge_state
from workflows.engine.graph import Graph
from workflows.models import (
    NodeRun,
    TaskType,
    Workflow,
    WorkflowRevision,
    WorkflowRun,
    WorkflowTrace,
)
from workflows.selectors.requirements import requirements_effective
from workflows.validation.rows import RowValidator

NOT_PUBLISHED = "This workflow has never been published; publish it before running it."
NOT_RUNNABLE = "This workflow is {status}; only an active workflow runs."


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
        if edge.source in node_runs and edge_state(edge, node_runs) == EdgeState.FIRED
    }


def revision_latest(*, workflow: Workflow) -> WorkflowRevision | None:
    return WorkflowRevision.objects.filter(workflow=workflow).order_by("-revision_num").first()


def runnable_revision(
    *, workflow: Workflow, revision: WorkflowRevision | None = None
) -> WorkflowRevision:
    """The revision a run (or an upload's runs) of the workflow executes: ``revision``, or its
    latest; 409 unless the workflow is active and has been published."""
    if workflow.status_id != WorkflowStatus.ACTIVE:
        raise Conflict("workflow_not_active", NOT_RUNNABLE.format(status=workflow.status_id))
    revision = revision or revision_latest(workflow=workflow)
    if revision is None:
        raise Conflict("workflow_not_published", NOT_PUBLISHED)
    return revision


def _blank(value) -> bool:
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


class InputCheck:
    """The checks a run's input gets, prepared once (a batch upload checks every row with one).

    ``required_data`` must be present and not blank; when the workflow names a task type, the
    effective requirements of (organization, endpoint, task type, today) apply as well. Fields
    the requirements do not know are allowed through: a workflow may carry its own.
    """

    def __init__(self, *, graph: Graph, org_id):
        self.required_data = list(graph.required_data)
        self.fields = []
        self.validator: RowValidator | None = None
        if graph.task_type_id:
            task_type = TaskType.objects.get(pk=graph.task_type_id)
            endpoint = tenant_selectors.endpoint_list().filter(pk=graph.endpoint_id).first()
            self.fields = requirements_effective(
                org_id=org_id, task_type=task_type, endpoint=endpoint, as_of=clock.now().date()
            )
            self.validator = RowValidator(self.fields)

    def problems(self, row: dict) -> dict:
        """What the row lacks or gets wrong: {"missing": [...], "errors": {...}}; empty if ok."""
        missing = [name for name in self.required_data if _blank(row.get(name))]
        problems: dict = {}
        if self.validator is not None:
            result = self.validator.validate(row)
            missing += [name for name in result.missing if name not in missing]
            if result.errors:
                problems["errors"] = result.errors
        if missing:
            problems["missing"] = missing
        return problems


def run_input_problems(*, graph: Graph, org_id, row: dict) -> dict:
    return InputCheck(graph=graph, org_id=org_id).problems(row)
