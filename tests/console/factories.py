"""Rows for the console's tests, made through the services where there is one (a workflow, a
run, a micro-state) and placed in time by the tests' own updates where only time would tell
(a run that ended yesterday at 23:59:59)."""

from __future__ import annotations

import itertools
from datetime import datetime

from memory import services as memory_services
from rcm.context import org_context
from tenants import selectors as tenant_selectors
from tenants import services as tenant_services
from tenants.models import ChannelType
from tests.workflows.factories import entry, general, outcome, workflow_build
from workflows.models import (
    BatchJob,
    BatchJobItem,
    NodeRun,
    NodeRunStatus,
    RunStatus,
    Workflow,
    WorkflowRun,
)
from workflows.services import runs

_numbers = itertools.count(1)


def workflow(tenant, name: str | None = None, *, endpoint_id: int | None = None) -> Workflow:
    """A published workflow: start -> check -> done, or check -[error]-> denied (a failure
    outcome)."""
    made, _ = workflow_build(
        org_id=tenant.id,
        name=name or f"Workflow {next(_numbers)}",
        nodes=[entry("start"), general("check"), outcome("done"), outcome("denied", "failure")],
        edges=["start -> check -> done", ("check", "denied", "error")],
        endpoint_id=endpoint_id,
    )
    return made


def run(tenant, of: Workflow | None = None, *, input: dict | None = None) -> WorkflowRun:
    """A run just started (its first node ready; its message would leave on commit)."""
    of = of or workflow(tenant)
    with org_context(tenant.id):
        return runs.run_start(workflow=of, input=input or {"member_id": "W1"})


def ended(
    tenant,
    of: Workflow,
    at: datetime,
    *,
    status: str = RunStatus.COMPLETED,
    result: str = "success",
    outcome: str = "done",
    error_kind: str = "",
    error: str = "",
    count: int = 1,
) -> list[WorkflowRun]:
    """``count`` runs of ``of`` that ended at ``at`` as told; a run that failed at a node has
    its node "check" failed with ``error_kind``."""
    made = [run(tenant, of) for _ in range(count)]
    ids = [one.pk for one in made]
    with org_context(tenant.id):
        WorkflowRun.objects.filter(pk__in=ids).update(
            status=status,
            result=result if status == RunStatus.COMPLETED else "",
            outcome=outcome if status == RunStatus.COMPLETED else "",
            error=error,
            ended_at=at,
        )
        if error_kind:
            NodeRun.objects.filter(run_id__in=ids, node_key="check").update(
                status=NodeRunStatus.FAILED, error_kind=error_kind, ended_at=at
            )
        return list(WorkflowRun.objects.filter(pk__in=ids).order_by("id"))


def batch(tenant, of: Workflow, *, rows: int, file_name: str = "rows.csv") -> BatchJob:
    """A batch job of ``rows`` pending rows, not yet started (as an upload leaves it)."""
    with org_context(tenant.id):
        job = BatchJob.objects.create(
            org_id=tenant.id,
            workflow=of,
            revision=of.revisions.order_by("-revision_num").first(),
            file_name=file_name,
            total_rows=rows,
            pending_rows=rows,
        )
        BatchJobItem.objects.bulk_create(
            BatchJobItem(
                org_id=tenant.id, batch_job=job, row_number=number, input_data={"member_id": "W1"}
            )
            for number in range(1, rows + 1)
        )
    return job


def micro_state(tenant, label: str = "Member ID field", *, step: str | None = None, **fields):
    """A micro-state stored by the memory's service (its own step: never the same page as
    another's)."""
    step = step or f"actions:{next(_numbers)}:fill"
    with org_context(tenant.id):
        return memory_services.micro_state_store(
            dom_snapshot=fields.pop(
                "dom", f"<html><body><label>{label}</label><input name='m'></body></html>"
            ),
            action_json=fields.pop("action", {"tool": "fill", "target": {"label": label}}),
            label=label,
            step_key=step,
            **fields,
        ).state


def endpoint(tenant, name: str = "UHC portal"):
    """An endpoint on a portal of the catalogue the organization has none on yet (one
    endpoint per portal and organization)."""
    with org_context(tenant.id):
        taken = tenant_selectors.endpoint_list().values_list("channel_type_id", flat=True)
        portal = ChannelType.objects.exclude(pk__in=list(taken)).order_by("code").first()
        return tenant_services.endpoint_create(org_id=tenant.id, name=name, channel_type=portal)
