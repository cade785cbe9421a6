"""Workflows for tests, built from a compact description through the authoring services.

    from tests.workflows.factories import decision, entry, general, outcome, workflow_build

    workflow, revision = workflow_build(
        org_id=org_a.id,
        required_data=["member_id"],
        nodes=[
            entry("start"),
            general("search", "http", {"url": "https://portal.test/m/{{ input.member_id }}",
                                       "status_labels": {"404": "not_found"}},
                    retry_policy={"maximum_attempts": 2}),
            decision("route", [("nodes.search.output.status == 200", "found")], "odd"),
            outcome("done"),
            outcome("missing", result="failure"),
        ],
        edges=[
            "start -> search -> route -[found]-> done",
            "search -[not_found]-> missing",
            ("route", "missing", "odd"),
        ],
    )

``nodes``: the helpers below, or plain dicts in the shape of the graph API (key, node_type,
kind, config, retry_policy, trigger_rule, timeout_s, position). ``edges``: chains written
``"a -> b -[label]-> c"`` (``->`` is the label success), or tuples ``(from, to)`` /
``(from, to, label)``.

The graph goes through the same checks as the API: a structural problem raises
``ApplicationError`` (code ``invalid_graph``) and, with ``publish=True`` (the default), a graph
that cannot be published fails with an AssertionError listing every problem. Returns the
workflow (active when published) and its revision (None when ``publish=False``).
"""

from __future__ import annotations

import itertools
import re
import uuid

from rcm.context import org_context
from rcm.errors import ApplicationError
from workflows.models import Workflow, WorkflowRevision
from workflows.services import authoring

_names = itertools.count(1)
_ARROW = re.compile(r"\s*-(?:\[([^\]]+)\]-)?>\s*")


def entry(key: str = "start") -> dict:
    return {"key": key, "node_type": "entry"}


def general(key: str, kind: str = "noop", config: dict | None = None, **fields) -> dict:
    """A general node; ``fields``: retry_policy, trigger_rule, timeout_s, position."""
    return {"key": key, "node_type": "general", "kind": kind, "config": config or {}, **fields}


def decision(key: str, conditions: list[tuple[str, str]], default: str, **fields) -> dict:
    """A decision node: ``conditions`` as (expression, label) pairs, tried in order."""
    config = {
        "conditions": [{"when": when, "label": label} for when, label in conditions],
        "default": default,
    }
    return {"key": key, "node_type": "decision", "kind": "decision", "config": config, **fields}


def outcome(key: str = "done", result: str = "success") -> dict:
    return {"key": key, "node_type": "outcome", "config": {"result": result}}


def transitions(edges: list[str | tuple]) -> list[dict]:
    """Edges in the compact notation, as the graph API's transitions."""
    found = []
    for edge in edges:
        if isinstance(edge, tuple):
            source, target, *label = edge
            found.append({"from": source, "to": target, "label": label[0] if label else "success"})
            continue
        # re.split with the label group: [a, label_or_None, b, label_or_None, c, ...]
        parts = _ARROW.split(edge.strip())
        for index in range(0, len(parts) - 2, 2):
            label = parts[index + 1] or "success"
            found.append({"from": parts[index], "to": parts[index + 2], "label": label})
    return found


def workflow_build(
    *,
    org_id: uuid.UUID,
    nodes: list[dict],
    edges: list[str | tuple],
    required_data: list[str] | None = None,
    name: str | None = None,
    publish: bool = True,
    created_by=None,
    description: str = "",
    task_type: str | None = None,
    endpoint_id: int | None = None,
    comment: str = "",
) -> tuple[Workflow, WorkflowRevision | None]:
    with org_context(org_id):
        workflow = authoring.workflow_create(
            org_id=org_id,
            created_by=created_by,
            name=name or f"Workflow {next(_names)}",
            description=description,
            required_data=required_data,
            task_type=task_type,
            endpoint_id=endpoint_id,
        )
        authoring.workflow_graph_replace(
            workflow=workflow,
            version=workflow.version,
            nodes=nodes,
            transitions=transitions(edges),
        )
        if not publish:
            return workflow, None
        try:
            revision = authoring.workflow_publish(
                workflow=workflow, created_by=created_by, comment=comment
            )
        except ApplicationError as exc:
            problems = "\n".join(
                f"  {p['node']}: {p['code']}: {p['message']}"
                for p in exc.details.get("problems", [])
            )
            raise AssertionError(f"workflow_build: cannot publish:\n{problems}") from exc
    return workflow, revision
