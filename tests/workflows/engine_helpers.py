"""Compact published workflows for engine tests, written straight as a revision snapshot.

    graph = published(org_id, "start>a, start>b, a>join, b>join, join>done",
                      kinds={"a": "noop", "b": "noop", "join": "noop"})

Edges are "source>target" or "source>target:label". Node types follow from the names:
"start" is the entry, names starting with "done"/"fail" are outcomes (result success/failure),
nodes given a kind in ``decisions`` are decision nodes, every other node is general.
"""

from __future__ import annotations

import uuid

from rcm.context import org_context
from workflows.engine.graph import Edge, Graph, Node
from workflows.models import Workflow, WorkflowRevision


def published(
    org_id,
    edges: str,
    *,
    kinds: dict | None = None,
    configs: dict | None = None,
    retry: dict | None = None,
    rules: dict | None = None,
    timeouts: dict | None = None,
    decisions: dict | None = None,
    required_data: list | None = None,
    task_type_id: str | None = None,
    endpoint_id: int | None = None,
    name: str | None = None,
) -> tuple[Workflow, WorkflowRevision]:
    kinds, configs, retry = kinds or {}, configs or {}, retry or {}
    rules, timeouts, decisions = rules or {}, timeouts or {}, decisions or {}
    parsed, keys = [], []
    for part in edges.split(","):
        pair, _, label = part.strip().partition(":")
        source, target = pair.split(">")
        parsed.append(Edge(source=source.strip(), target=target.strip(), label=label or "success"))
        keys += [source.strip(), target.strip()]
    nodes = {}
    for key in dict.fromkeys(keys):
        if key == "start":
            node_type, kind, config = "entry", "", {}
        elif key.startswith(("done", "fail")):
            result = "success" if key.startswith("done") else "failure"
            node_type, kind, config = "outcome", "", {"result": result}
        elif key in decisions:
            node_type, kind, config = "decision", "decision", decisions[key]
        else:
            node_type, kind, config = "general", kinds.get(key, "noop"), configs.get(key, {})
        nodes[key] = Node(
            key=key,
            node_type=node_type,
            kind=kind,
            config=config,
            retry_policy=retry.get(key, {}),
            trigger_rule=rules.get(key, "none_failed_min_one_success"),
            timeout_s=timeouts.get(key),
        )
    graph = Graph(
        nodes=nodes,
        edges=parsed,
        required_data=required_data or [],
        task_type_id=task_type_id,
        endpoint_id=endpoint_id,
    )
    with org_context(org_id):
        workflow = Workflow.objects.create(
            org_id=org_id, name=name or f"wf-{uuid.uuid4().hex[:8]}", status_id="active"
        )
        revision = WorkflowRevision.objects.create(
            org_id=org_id, workflow=workflow, revision_num=1, graph=graph.to_snapshot()
        )
    return workflow, revision
