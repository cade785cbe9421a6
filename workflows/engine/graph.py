"""The graph a run executes: a revision's frozen snapshot, read into plain objects.

Snapshot (``workflow_revision.graph``)::

    {"required_data": ["member_id", ...],
     "task_type_id": "<uuid>" | null, "endpoint_id": 12 | null,
     "nodes": [{"id": 7, "key": "search", "node_type": "general", "kind": "http",
                "config": {...}, "retry_policy": {...}, "trigger_rule": "...",
                "timeout_s": 30}, ...],
     "transitions": [{"id": 9, "from": "start", "to": "search", "label": "success"}, ...]}

Node and transition ids are the draft rows' at publish time; the engine only uses them to
count traversals (``workflow_transition.freq``) on the rows that still exist.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field

from workflows.models import NodeType, RunResult, TriggerRule, WorkflowRevision, WorkflowRun

# A node without its own timeout gets this one; none may exceed the maximum, which stays
# below the broker's visibility timeout (settings.CELERY_BROKER_TRANSPORT_OPTIONS).
DEFAULT_NODE_TIMEOUT_S = 300
MAX_NODE_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Node:
    key: str
    node_type: str
    kind: str = ""
    config: dict = field(default_factory=dict)
    retry_policy: dict = field(default_factory=dict)
    trigger_rule: str = TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    timeout_s: int | None = None
    id: int | None = None

    @property
    def effective_timeout_s(self) -> int:
        return min(self.timeout_s or DEFAULT_NODE_TIMEOUT_S, MAX_NODE_TIMEOUT_S)

    @property
    def is_outcome(self) -> bool:
        return self.node_type == NodeType.OUTCOME

    @property
    def outcome_result(self) -> str:
        """An outcome's result (its config's "result"; validation allows success or failure)."""
        return self.config.get("result", RunResult.SUCCESS)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    id: int | None = None


@dataclass
class Graph:
    nodes: dict[str, Node]
    edges: list[Edge]
    required_data: list[str] = field(default_factory=list)
    task_type_id: str | None = None
    endpoint_id: int | None = None

    def __post_init__(self):
        self.outgoing: dict[str, list[Edge]] = defaultdict(list)
        self.incoming: dict[str, list[Edge]] = defaultdict(list)
        for edge in self.edges:
            self.outgoing[edge.source].append(edge)
            self.incoming[edge.target].append(edge)

    @property
    def entries(self) -> list[Node]:
        return [node for node in self.nodes.values() if node.node_type == NodeType.ENTRY]

    @classmethod
    def from_snapshot(cls, snapshot: dict) -> Graph:
        nodes = {item["key"]: Node(**item) for item in snapshot.get("nodes", [])}
        edges = [
            Edge(source=item["from"], target=item["to"], label=item["label"], id=item.get("id"))
            for item in snapshot.get("transitions", [])
        ]
        return cls(
            nodes=nodes,
            edges=edges,
            required_data=list(snapshot.get("required_data", [])),
            task_type_id=snapshot.get("task_type_id"),
            endpoint_id=snapshot.get("endpoint_id"),
        )

    def to_snapshot(self) -> dict:
        return {
            "required_data": list(self.required_data),
            "task_type_id": self.task_type_id,
            "endpoint_id": self.endpoint_id,
            "nodes": [
                {
                    "id": node.id,
                    "key": node.key,
                    "node_type": node.node_type,
                    "kind": node.kind,
                    "config": node.config,
                    "retry_policy": node.retry_policy,
                    "trigger_rule": node.trigger_rule,
                    "timeout_s": node.timeout_s,
                }
                for node in self.nodes.values()
            ],
            "transitions": [
                {"id": edge.id, "from": edge.source, "to": edge.target, "label": edge.label}
                for edge in self.edges
            ],
        }


# -- the revision graph, cached: revisions never change --------------------------------------


@functools.lru_cache(maxsize=512)
def graph_of_revision(revision_id: int, workflow_id) -> Graph:
    # Keyed with the workflow's random UUID too: a revision id alone can come back after a
    # database is emptied and its sequences restarted (the test suite does that).
    snapshot = WorkflowRevision.objects.filter(pk=revision_id, workflow_id=workflow_id)
    return Graph.from_snapshot(snapshot.values_list("graph", flat=True).get())


def graph_of(run: WorkflowRun) -> Graph:
    return graph_of_revision(run.revision_id, run.workflow_id)
