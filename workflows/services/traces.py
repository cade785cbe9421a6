"""Traces that a node kind writes for the steps inside one attempt (a web node: one row per
action), beside the one the engine writes for the attempt itself.

Built and masked like the engine's own (workflows/engine/traces.py): patient data by shape,
and the run's input values as declared literals, out of every detail and error.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from django.db import transaction

from workflows.engine.traces import trace_masker, trace_row
from workflows.models import NodeRun, WorkflowRun, WorkflowTrace, WorkflowTraceEndpoint


@dataclass(frozen=True)
class StepTrace:
    """One step of an attempt, as a kind reports it."""

    action_type: str  # "web.fill"
    success: bool
    duration_ms: int
    detail: dict = field(default_factory=dict)
    error: str = ""
    tier: int | None = None  # 1 memory, 2 the page scored, 3 a model; None: no target found
    tier_reason: str = ""
    # A model's part in it (tier 3), masked by the kind before it gets here.
    llm_prompt: str = ""
    llm_response: str = ""
    llm_model: str = ""
    llm_tokens_used: int | None = None


# trace_row's arguments that say what a step did; a step of imported history (TraceRecord)
# has them too.
STEP_FIELDS = tuple(each.name for each in fields(StepTrace))


def step_trace_fields(step: object) -> dict[str, Any]:
    """The ``STEP_FIELDS`` of ``step``, to pass to ``trace_row``."""
    return {name: getattr(step, name) for name in STEP_FIELDS}


@transaction.atomic
def step_traces_record(
    *,
    run_id: int,
    node_key: str,
    attempt: int,
    steps: list[StepTrace],
    endpoint_id: int | None = None,
) -> int:
    """Store ``steps`` as traces of the node run ``(run_id, node_key)``; how many."""
    run = WorkflowRun.objects.only(
        "org_id", "workflow_id", "batch_job_item_id", "created_by_id", "context"
    ).get(pk=run_id)
    node_run_id = (
        NodeRun.objects.filter(run_id=run_id, node_key=node_key).values_list("pk", flat=True).get()
    )
    mask = trace_masker((run.context or {}).get("input"))
    traces = WorkflowTrace.objects.bulk_create(
        WorkflowTrace(
            **trace_row(
                mask=mask,
                org_id=run.org_id,
                workflow_id=run.workflow_id,
                run_id=run_id,
                node_run_id=node_run_id,
                batch_job_item_id=run.batch_job_item_id,
                node_key=node_key,
                attempt=attempt,
                user_id=run.created_by_id,
                **step_trace_fields(step),
            )
        )
        for step in steps
    )
    if endpoint_id is not None:
        WorkflowTraceEndpoint.objects.bulk_create(
            WorkflowTraceEndpoint(org_id=run.org_id, trace=trace, endpoint_id=endpoint_id)
            for trace in traces
        )
    return len(traces)
