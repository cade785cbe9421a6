"""Starting, cancelling and re-running workflow runs."""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction

from rcm import clock
from rcm.errors import ApplicationError, Conflict
from workflows.engine import decisions
from workflows.engine.graph import Graph, graph_of, graph_of_revision
from workflows.models import (
    NodeRun,
    NodeRunStatus,
    RunStatus,
    Workflow,
    WorkflowRevision,
    WorkflowRun,
)
from workflows.models.runs import RUN_TERMINAL
from workflows.selectors.runs import run_input_problems, runnable_revision

MISSING_FIELDS = "The input lacks required fields."
INVALID_INPUT = "The input does not satisfy the workflow's requirements."
EXTERNAL_ID_TAKEN = "A run with this external_id exists."
ALREADY_FINISHED = "This run has already finished ({status})."
MAX_RUN_TIMEOUT_S = 7 * 24 * 3600


@transaction.atomic
def run_start(
    *,
    workflow: Workflow,
    input: dict,
    created_by=None,
    external_id: str | None = None,
    revision: WorkflowRevision | None = None,
    timeout_s: int | None = None,
) -> WorkflowRun:
    """A new run of the workflow's latest revision (or ``revision``), started asynchronously."""
    revision = runnable_revision(workflow=workflow, revision=revision)
    graph = Graph.from_snapshot(revision.graph)
    problems = run_input_problems(graph=graph, org_id=workflow.org_id, row=input)
    if problems:
        message = MISSING_FIELDS if set(problems) == {"missing"} else INVALID_INPUT
        raise ApplicationError("invalid_input", message, problems)
    now = clock.now()
    try:
        with transaction.atomic():
            run = WorkflowRun.objects.create(
                org_id=workflow.org_id,
                workflow=workflow,
                revision=revision,
                input=input,
                context={"input": input, "nodes": {}},
                created_by=created_by,
                external_id=external_id,
                deadline_at=now + timedelta(seconds=timeout_s) if timeout_s else None,
                status=RunStatus.RUNNING,
                started_at=now,
            )
    except IntegrityError as exc:
        raise Conflict(
            "external_id_taken", EXTERNAL_ID_TAKEN, {"external_id": [EXTERNAL_ID_TAKEN]}
        ) from exc
    _runs_begin(graph=graph, runs=[run])
    return run


def runs_start_for_items(*, job, items: list) -> list[WorkflowRun]:
    """The runs of a batch's rows, on the job's own revision (every row was validated at
    upload), created together: a feeder pass starts dozens of rows while it holds the job's
    lock, which every settling row of the job waits for."""
    graph = graph_of_revision(job.revision_id, job.workflow_id)
    now = clock.now()
    runs = WorkflowRun.objects.bulk_create(
        WorkflowRun(
            org_id=job.org_id,
            workflow_id=job.workflow_id,
            revision_id=job.revision_id,
            input=item.input_data,
            context={"input": item.input_data, "nodes": {}},
            created_by_id=job.created_by_id,
            status=RunStatus.RUNNING,
            started_at=now,
            batch_job_item=item,
        )
        for item in items
    )
    _runs_begin(graph=graph, runs=runs)
    return runs


def _runs_begin(*, graph: Graph, runs: list[WorkflowRun]) -> None:
    """New runs' node runs, and each run's entry completed, which releases what follows it."""
    node_runs = NodeRun.objects.bulk_create(
        NodeRun(
            org_id=run.org_id,
            run=run,
            node_key=key,
            status=NodeRunStatus.PENDING,
            timeout_s=node.effective_timeout_s,
        )
        for run in runs
        for key, node in graph.nodes.items()
    )
    by_run: dict[int, dict[str, NodeRun]] = {run.pk: {} for run in runs}
    for node_run in node_runs:
        by_run[node_run.run_id][node_run.node_key] = node_run
    for run in runs:
        decisions.run_begin(run=run, graph=graph, node_runs=by_run[run.pk])


@transaction.atomic
def run_cancel(*, run: WorkflowRun) -> WorkflowRun:
    """Nothing new starts; running nodes finish; the run ends as cancelled."""
    run = WorkflowRun.objects.select_for_update().get(pk=run.pk)
    if run.status in RUN_TERMINAL:
        raise Conflict("run_finished", ALREADY_FINISHED.format(status=run.status))
    now = clock.now()
    WorkflowRun.objects.filter(pk=run.pk).update(cancel_requested=True, updated_at=now)
    run.cancel_requested = True
    NodeRun.objects.filter(run=run, status__in=[NodeRunStatus.PENDING, NodeRunStatus.READY]).update(
        status=NodeRunStatus.CANCELLED, ended_at=now, updated_at=now, error="cancelled on request"
    )
    if not NodeRun.objects.filter(run=run, status=NodeRunStatus.RUNNING).exists():
        node_runs = {nr.node_key: nr for nr in NodeRun.objects.filter(run=run)}
        decisions.run_finish(run=run, graph=graph_of(run), node_runs=node_runs)
    run.refresh_from_db()
    return run


def run_rerun(*, run: WorkflowRun, created_by=None, use_current: bool = False) -> WorkflowRun:
    """The same input again, on the run's own revision or, if asked, the latest one."""
    workflow = Workflow.objects.get(pk=run.workflow_id)
    return run_start(
        workflow=workflow,
        input=run.input,
        created_by=created_by,
        revision=None if use_current else run.revision,
    )
