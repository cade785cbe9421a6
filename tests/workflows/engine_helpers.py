"""Compact published workflows for engine tests, written straight as a revision snapshot.

    graph = published(org_id, "start>a, start>b, a>join, b>join, join>done",
                      kinds={"a": "noop", "b": "noop", "join": "noop"})

Edges are "source>target" or "source>target:label". Node types follow from the names:
"start" is the entry, names starting with "done"/"fail" are outcomes (result success/failure),
nodes given a kind in ``decisions`` are decision nodes, every other node is general.

    workflow, revision = published_http(org_id, url, retry={"maximum_attempts": 2})

is the usual one-request workflow "start>call, call>done" whose ``call`` node asks ``url``;
``published_wait`` and ``published_transform`` likewise give a node ``pause`` that waits and a
node ``shape`` that computes outputs.
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


def published_http(
    org_id,
    url: str,
    *,
    key: str = "call",
    edges: str | None = None,
    retry: dict | None = None,
    node_timeout_s: float | None = None,
    **http_config,
) -> tuple[Workflow, WorkflowRevision]:
    """A published workflow ``start>{key}, {key}>done`` (or ``edges``) whose node ``key`` is an
    http request to ``url`` with ``http_config`` (``timeout_s``, ``status_labels``, ``headers``),
    retried as ``retry`` says and given ``node_timeout_s`` an attempt."""
    return published(
        org_id,
        edges or f"start>{key}, {key}>done",
        kinds={key: "http"},
        configs={key: {"url": url, **http_config}},
        retry={key: retry} if retry is not None else None,
        timeouts={key: node_timeout_s} if node_timeout_s is not None else None,
    )


def published_wait(
    org_id, seconds: float, *, edges: str = "start>pause, pause>done", **options
) -> tuple[Workflow, WorkflowRevision]:
    """A published workflow whose node ``pause`` waits ``seconds``; ``options`` as ``published``
    takes them."""
    return published(
        org_id, edges, kinds={"pause": "wait"}, configs={"pause": {"seconds": seconds}}, **options
    )


def published_transform(
    org_id, outputs: dict, *, edges: str = "start>shape, shape>done", **options
) -> tuple[Workflow, WorkflowRevision]:
    """A published workflow whose node ``shape`` computes ``outputs`` (templates by name);
    ``options`` as ``published`` takes them."""
    return published(
        org_id,
        edges,
        kinds={"shape": "transform"},
        configs={"shape": {"outputs": outputs}},
        **options,
    )


# An http step slow enough for a test to kill its worker mid-attempt, and retried after.
KILLABLE_STEP = {
    "timeout_s": 5,
    "node_timeout_s": 3,
    "retry": {"maximum_attempts": 5, "initial_interval_s": 0.1, "jitter": 0},
}


def quickly_recovering_workers(worker_processes, settings):
    """``start()`` starts a worker process of two pool processes and returns it, to kill. What a
    killed worker held comes back within seconds: its prefetched messages stay unacknowledged on
    the broker and the reaper sends them again once they are a second old; a lease outlives its
    node's timeout by a second."""
    settings.ENGINE_REQUEUE_AFTER_S = 1
    env = {"ENGINE_LEASE_GRACE_S": "1"}
    return lambda: worker_processes(concurrency=2, env=env)
