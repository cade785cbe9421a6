"""A node run's completion written in one statement: its row, its entry in the run's context,
its trace. It is every step's write (an attempt that completed its node, and the entry and
outcome nodes the decisions complete inline), so one round trip instead of three is worth the
SQL.
"""

from __future__ import annotations

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection

from workflows.engine.graph import Node
from workflows.engine.traces import MAX_ERROR, attempt_trace_row, trace_masker
from workflows.models import NodeRun, WorkflowRun

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
        %(action_type)s, %(detail)s::jsonb, %(success)s, %(duration_ms)s, %(trace_error)s, '',
        '', '', '', %(user_id)s, '', %(now)s)
"""


def node_run_completion_write(
    *,
    run: WorkflowRun,
    node_run: NodeRun,
    node: Node,
    output: dict,
    success: bool,
    duration_ms: int,
    detail: dict,
) -> None:
    """Write ``node_run`` as completed (its status, label, error and end set by the caller)."""
    # The context keeps the working output: later nodes' templates read it, and a batch row's
    # results are taken from it. The node run's copy and the trace are what people read.
    entry = {"output": output, "label": node_run.label}
    run.context.setdefault("nodes", {})[node.key] = entry
    mask = trace_masker(run.input)
    trace = attempt_trace_row(
        run,
        node_run,
        node,
        mask=mask,
        success=success,
        duration_ms=duration_ms,
        detail=detail,
        error=node_run.error,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            _COMPLETION_SQL,
            {
                "status": node_run.status,
                "label": node_run.label,
                "output": json.dumps(mask(output), cls=DjangoJSONEncoder),
                "error": node_run.error[:MAX_ERROR],
                "now": node_run.ended_at,
                "node_run_id": node_run.pk,
                "key": node.key,
                "entry": json.dumps(entry, cls=DjangoJSONEncoder),
                "run_id": run.pk,
                "org_id": run.org_id,
                "workflow_id": run.workflow_id,
                "attempt": trace["attempt"],
                "action_type": trace["action_type"],
                "detail": json.dumps(trace["action_detail"], cls=DjangoJSONEncoder),
                "success": trace["success"],
                "duration_ms": trace["duration_ms"],
                "trace_error": trace["error_detail"],
                "user_id": trace["user_id"],
            },
        )
