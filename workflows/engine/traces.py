"""Trace rows (``workflow_trace``), built in one place for every writer: the engine's row per
attempt, a kind's rows for the steps inside an attempt (workflows/services/traces.py), and
history imported in bulk (workflows/services/history.py).

Masked here (DESIGN §5): every text a person reads in a trace (its detail, error, tier
reason, the model's exchange) loses patient data by shape, and the run's input values as
declared literals, before it is stored. Texts are cut to the engine's limits: a bounded
column's size, and for the error and the tier reason the length a person reads (MAX_ERROR,
MAX_TIER_REASON), so that imported history reads like live traces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rcm import phi
from workflows.engine.graph import Node
from workflows.models import NodeRun, WorkflowRun, WorkflowTrace

MAX_ACTION_TYPE = 64  # workflow_trace.action_type
MAX_NODE_KEY = 64  # workflow_trace.node_key
MAX_LLM_MODEL = 200  # workflow_trace.llm_model
MAX_ERROR = 4000
MAX_TIER_REASON = 1000

# The columns of a row from trace_row, in its order.
TRACE_COLUMNS = (
    "org_id",
    "workflow_id",
    "run_id",
    "node_run_id",
    "batch_job_item_id",
    "node_key",
    "attempt",
    "action_type",
    "action_detail",
    "success",
    "duration_ms",
    "error_detail",
    "tier",
    "tier_reason",
    "llm_prompt",
    "llm_response",
    "llm_model",
    "llm_tokens_used",
    "user_id",
)


def trace_masker(declared: dict | None) -> Callable[[Any], Any]:
    """``phi.masker`` of a run's input values, passing over what is empty: most of a trace's
    texts (its error, the model's exchange) are, and a million traces make that worth a test."""
    mask = phi.masker(declared or {})
    return lambda value: mask(value) if value else value


def trace_row(
    *,
    mask: Callable[[Any], Any],
    org_id,
    workflow_id,
    run_id: int | None,
    node_run_id: int | None,
    batch_job_item_id: int | None,
    node_key: str,
    attempt: int,
    action_type: str,
    success: bool,
    duration_ms: int,
    detail: dict,
    error: str,
    user_id,
    tier: int | None = None,
    tier_reason: str = "",
    llm_prompt: str = "",
    llm_response: str = "",
    llm_model: str = "",
    llm_tokens_used: int | None = None,
) -> dict:
    """One trace row's columns (TRACE_COLUMNS), its texts masked with ``mask``
    (``trace_masker`` of the run's input)."""
    return {
        "org_id": org_id,
        "workflow_id": workflow_id,
        "run_id": run_id,
        "node_run_id": node_run_id,
        "batch_job_item_id": batch_job_item_id,
        "node_key": node_key,
        "attempt": max(attempt, 1),
        "action_type": action_type[:MAX_ACTION_TYPE],
        "action_detail": mask(detail),
        "success": success,
        "duration_ms": max(duration_ms, 0),
        "error_detail": mask(error)[:MAX_ERROR],
        "tier": tier,
        # A reason may quote what the page said (a repaired label): masked like the detail.
        "tier_reason": mask(tier_reason)[:MAX_TIER_REASON],
        "llm_prompt": mask(llm_prompt),
        "llm_response": mask(llm_response),
        "llm_model": llm_model[:MAX_LLM_MODEL],
        "llm_tokens_used": llm_tokens_used,
        "user_id": user_id,
    }


def attempt_trace_row(
    run: WorkflowRun,
    node_run: NodeRun,
    node: Node,
    *,
    mask: Callable[[Any], Any],
    success: bool,
    duration_ms: int,
    detail: dict,
    error: str = "",
) -> dict:
    """The engine's row for one attempt of a node run."""
    return trace_row(
        mask=mask,
        org_id=run.org_id,
        workflow_id=run.workflow_id,
        run_id=run.pk,
        node_run_id=node_run.pk,
        batch_job_item_id=None,
        node_key=node.key,
        attempt=node_run.attempt,
        action_type=f"node.{node.kind or node.node_type}",
        detail={"node_type": node.node_type, **detail},
        success=success,
        duration_ms=duration_ms,
        error=error,
        user_id=run.created_by_id,
    )


def attempt_trace_write(
    run: WorkflowRun,
    node_run: NodeRun,
    node: Node,
    *,
    success: bool,
    duration_ms: int,
    detail: dict,
    error: str = "",
) -> None:
    """Store the row of an attempt that ended without completing its node (a completion
    writes its row with the node run's, workflows/engine/completion.py)."""
    row = attempt_trace_row(
        run,
        node_run,
        node,
        mask=trace_masker(run.input),
        success=success,
        duration_ms=duration_ms,
        detail=detail,
        error=error,
    )
    WorkflowTrace.objects.create(**row)
