"""Checks of a workflow graph: what a draft must satisfy to be saved, and what a graph must
satisfy to be published (DESIGN §6).

Two levels, because a draft may be incomplete but never malformed:

* ``structure_problems`` — a node or transition that cannot be stored meaningfully: a bad or
  duplicate key, an unknown node type, kind or trigger rule, a timeout out of range, a
  transition naming a node that does not exist (dangling) or looping on its node. Saving a
  draft with any of these is refused and writes nothing.
* ``graph_problems`` — everything above plus what publishing needs: one entry, every node
  reachable from it and able to reach an outcome, no cycles, every label a node can emit
  covered (and no transition on a label it cannot emit), configs and retry policies valid,
  template references resolvable.

Every check returns *all* the problems it finds, each naming its node (``None`` for the graph
as a whole), so that an editor can mark every faulty node at once.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from workflows.engine import kinds, retry, templates
from workflows.engine.graph import MAX_NODE_TIMEOUT_S, Edge, Graph, Node
from workflows.models import NodeType, RunResult, TriggerRule

# Keys are slugs, so that templates can name them (nodes.search.output, nodes['check-elig']).
KEY_PATTERN = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")
MAX_LABEL_LENGTH = 64  # workflow_transition.action_label
OUTCOME_RESULTS = tuple(RunResult.values)
# What a template may read of another node in the run context: nodes.<key>.output / .label.
NODE_CONTEXT_PARTS = ("output", "label")
RETRY_HINT = "to repeat a failing step, give that node a retry_policy instead of a loop"


class Code:
    """The ``code`` of each problem (stable: clients and tests match on them)."""

    # structure: refused on save
    INVALID_KEY = "invalid_key"
    DUPLICATE_KEY = "duplicate_key"
    UNKNOWN_NODE_TYPE = "unknown_node_type"
    UNKNOWN_TRIGGER_RULE = "unknown_trigger_rule"
    INVALID_TIMEOUT = "invalid_timeout"
    UNKNOWN_KIND = "unknown_kind"
    KIND_NOT_ALLOWED = "kind_not_allowed"
    CONFIG_NOT_OBJECT = "config_not_object"
    RETRY_POLICY_NOT_OBJECT = "retry_policy_not_object"
    DANGLING_TRANSITION = "dangling_transition"
    SELF_LOOP = "self_loop"
    DUPLICATE_TRANSITION = "duplicate_transition"
    INVALID_LABEL = "invalid_label"
    # publish: reported by validate, refused on publish
    NO_ENTRY = "no_entry"
    MULTIPLE_ENTRIES = "multiple_entries"
    UNREACHABLE = "unreachable"
    NO_OUTCOME = "no_outcome"
    NO_PATH_TO_OUTCOME = "no_path_to_outcome"
    CYCLE = "cycle"
    MISSING_KIND = "missing_kind"
    INVALID_CONFIG = "invalid_config"
    INVALID_RETRY_POLICY = "invalid_retry_policy"
    UNCOVERED_LABEL = "uncovered_label"
    UNKNOWN_LABEL = "unknown_label"
    OUTCOME_HAS_TRANSITIONS = "outcome_has_transitions"
    UNKNOWN_INPUT_FIELD = "unknown_input_field"
    NOT_UPSTREAM = "not_upstream"
    INVALID_REFERENCE = "invalid_reference"


@dataclass(frozen=True)
class Problem:
    node: str | None  # the node's key; None for the graph as a whole
    code: str
    message: str

    def as_dict(self) -> dict:
        return {"node": self.node, "code": self.code, "message": self.message}


# -- structure -----------------------------------------------------------------------------


def node_problems(node: Node) -> list[Problem]:
    """What makes a node unsavable on its own, whatever the rest of the graph."""
    found = []

    def problem(code: str, message: str) -> None:
        found.append(Problem(node.key, code, message))

    if not isinstance(node.key, str) or not KEY_PATTERN.match(node.key):
        problem(
            Code.INVALID_KEY,
            f"Key {node.key!r} must be 1-64 letters, digits, '_' or '-'.",
        )
    if node.node_type not in NodeType.values:
        problem(
            Code.UNKNOWN_NODE_TYPE,
            f"Unknown node_type {node.node_type!r}; use one of {', '.join(NodeType.values)}.",
        )
    if node.trigger_rule not in TriggerRule.values:
        problem(
            Code.UNKNOWN_TRIGGER_RULE,
            f"Unknown trigger_rule {node.trigger_rule!r}; use one of "
            f"{', '.join(TriggerRule.values)}.",
        )
    if node.timeout_s is not None and not (
        isinstance(node.timeout_s, int) and 1 <= node.timeout_s <= MAX_NODE_TIMEOUT_S
    ):
        problem(Code.INVALID_TIMEOUT, f"timeout_s must be between 1 and {MAX_NODE_TIMEOUT_S}.")
    if not isinstance(node.config, dict):
        problem(Code.CONFIG_NOT_OBJECT, "config must be an object.")
    if not isinstance(node.retry_policy, dict):
        problem(Code.RETRY_POLICY_NOT_OBJECT, "retry_policy must be an object.")
    found += _kind_problems(node)
    return found


def _kind_problems(node: Node) -> list[Problem]:
    if node.node_type in (NodeType.ENTRY, NodeType.OUTCOME):
        if node.kind:
            return [
                Problem(
                    node.key,
                    Code.KIND_NOT_ALLOWED,
                    f"An {node.node_type} node has no kind; remove {node.kind!r}.",
                )
            ]
        return []
    if not node.kind:
        return []  # a draft may choose the kind later; publishing requires it
    kind = kinds.get(node.kind)
    if kind is None:
        return [
            Problem(
                node.key,
                Code.UNKNOWN_KIND,
                f"Unknown kind {node.kind!r}; registered kinds: {', '.join(kinds.names())}.",
            )
        ]
    if node.node_type in NodeType.values and node.node_type not in kind.node_types:
        return [
            Problem(
                node.key,
                Code.KIND_NOT_ALLOWED,
                f"Kind {node.kind!r} cannot be used by a {node.node_type} node "
                f"(only {', '.join(kind.node_types)}).",
            )
        ]
    return []


def edge_problems(edge: Edge, keys: Iterable[str]) -> list[Problem]:
    """What makes a transition unsavable, given the keys of the workflow's nodes."""
    keys = set(keys)
    found = [
        Problem(
            end,
            Code.DANGLING_TRANSITION,
            f"Transition {_edge_text(edge)} names {end!r}, which is not a node of this workflow.",
        )
        for end in dict.fromkeys((edge.source, edge.target))
        if end not in keys
    ]
    if edge.source == edge.target:
        found.append(
            Problem(
                edge.source,
                Code.SELF_LOOP,
                f"Transition {_edge_text(edge)} loops on its node; {RETRY_HINT}.",
            )
        )
    if not isinstance(edge.label, str) or not 1 <= len(edge.label) <= MAX_LABEL_LENGTH:
        found.append(
            Problem(
                edge.source,
                Code.INVALID_LABEL,
                f"A transition label is 1-{MAX_LABEL_LENGTH} characters.",
            )
        )
    return found


def structure_problems(nodes: list[Node], edges: list[Edge]) -> list[Problem]:
    """Problems that make a draft unsavable (``nodes`` as given: duplicates are reported)."""
    found: list[Problem] = []
    keys: set[str] = set()
    for node in nodes:
        found += node_problems(node)
        if node.key in keys:
            found.append(duplicate_key_problem(node.key))
        keys.add(node.key)
    seen: set[tuple] = set()
    for edge in edges:
        found += edge_problems(edge, keys)
        if (edge.source, edge.target, edge.label) in seen:
            found.append(duplicate_transition_problem(edge))
        seen.add((edge.source, edge.target, edge.label))
    return found


def duplicate_key_problem(key: str) -> Problem:
    return Problem(
        key, Code.DUPLICATE_KEY, f"Two nodes have the key {key!r}; keys are unique in a workflow."
    )


def duplicate_transition_problem(edge: Edge) -> Problem:
    return Problem(
        edge.source, Code.DUPLICATE_TRANSITION, f"Transition {_edge_text(edge)} already exists."
    )


def _edge_text(edge: Edge) -> str:
    return f"{edge.source} -[{edge.label}]-> {edge.target}"


# -- publish -------------------------------------------------------------------------------


def graph_problems(graph: Graph) -> list[Problem]:
    """Every problem that keeps ``graph`` from being published (empty: publishable)."""
    found = structure_problems(list(graph.nodes.values()), graph.edges)
    found += _entry_problems(graph)
    found += _reachability_problems(graph)
    found += _cycle_problems(graph)
    for node in graph.nodes.values():
        found += _node_publish_problems(graph, node)
    return found


def _successors(graph: Graph) -> dict[str, list[str]]:
    return {
        key: [edge.target for edge in graph.outgoing.get(key, []) if edge.target in graph.nodes]
        for key in graph.nodes
    }


def _predecessors(graph: Graph) -> dict[str, list[str]]:
    return {
        key: [edge.source for edge in graph.incoming.get(key, []) if edge.source in graph.nodes]
        for key in graph.nodes
    }


def _closure(starts: Iterable[str], neighbours: dict[str, list[str]]) -> set[str]:
    """The nodes reachable from ``starts`` (included) along ``neighbours``."""
    reached = set(starts)
    queue = deque(reached)
    while queue:
        for other in neighbours[queue.popleft()]:
            if other not in reached:
                reached.add(other)
                queue.append(other)
    return reached


def _entry_problems(graph: Graph) -> list[Problem]:
    entries = [node.key for node in graph.entries]
    if not entries:
        return [Problem(None, Code.NO_ENTRY, "The workflow needs exactly one entry node.")]
    if len(entries) == 1:
        return []
    message = (
        f"The workflow needs exactly one entry node; it has {len(entries)}: {', '.join(entries)}."
    )
    return [Problem(key, Code.MULTIPLE_ENTRIES, message) for key in entries]


def _reachability_problems(graph: Graph) -> list[Problem]:
    found = []
    entries = [node.key for node in graph.entries]
    if entries:  # with no entry, "no_entry" says it all
        reached = _closure(entries, _successors(graph))
        found += [
            Problem(key, Code.UNREACHABLE, f"No path leads from the entry node to {key}.")
            for key in graph.nodes
            if key not in reached
        ]
    outcomes = [node.key for node in graph.nodes.values() if node.is_outcome]
    if not outcomes:
        found.append(
            Problem(None, Code.NO_OUTCOME, "The workflow needs an outcome node to end in.")
        )
        return found
    finishing = _closure(outcomes, _predecessors(graph))
    found += [
        Problem(key, Code.NO_PATH_TO_OUTCOME, f"No path leads from {key} to an outcome node.")
        for key in graph.nodes
        if key not in finishing
    ]
    return found


def _cycle_problems(graph: Graph) -> list[Problem]:
    successors = _successors(graph)
    found = []
    for component in _strongly_connected(successors):
        if len(component) < 2:
            continue  # a single node loops only through a self-loop, refused structurally
        members = set(component)
        start = next(key for key in graph.nodes if key in members)
        path = _cycle_through(start, members, successors)
        message = f"Cycle {' -> '.join([*path, start])}: a workflow graph may not loop; "
        others = [key for key in graph.nodes if key in members and key not in path]
        if others:
            message += f"{', '.join(others)} loop with it too; "
        found.append(Problem(start, Code.CYCLE, message + RETRY_HINT + "."))
    return found


def _strongly_connected(successors: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iterative (graphs may be deeper than the
    recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in successors:
        if root in index:
            continue
        work = [(root, iter(successors[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            key, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors[child])))
                elif child in on_stack:
                    low[key] = min(low[key], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[key])
            if low[key] == index[key]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == key:
                        break
                components.append(component)
    return components


def _cycle_through(start: str, members: set[str], successors: dict[str, list[str]]) -> list[str]:
    """A shortest path start -> ... -> x such that x -> start closes a cycle (within
    ``members``, a strongly connected component, so one exists)."""
    parent: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        key = queue.popleft()
        for child in successors[key]:
            if child == start:
                path, step = [key], parent[key]
                while step is not None:
                    path.append(step)
                    step = parent[step]
                return path[::-1]
            if child in members and child not in parent:
                parent[child] = key
                queue.append(child)
    return [start]


def node_config_problems(node: Node) -> list[Problem]:
    """What publishing will say about a node's retry policy, kind and config on their own,
    whatever the rest of the graph: what an editor shows next to those fields."""
    return _own_problems(node)[0]


def _own_problems(node: Node) -> tuple[list[Problem], set[str] | None]:
    """``node_config_problems`` and the labels the node can end with (None: unknown)."""
    if not _readable(node):
        return [], None
    found = []
    if isinstance(node.retry_policy, dict):
        found += [
            Problem(node.key, Code.INVALID_RETRY_POLICY, message)
            for message in retry.validate(node.retry_policy)
        ]
    if node.node_type in (NodeType.GENERAL, NodeType.DECISION) and not node.kind:
        found.append(
            Problem(
                node.key,
                Code.MISSING_KIND,
                f"A {node.node_type} node needs a kind; registered kinds: "
                f"{', '.join(kinds.names())}.",
            )
        )
        return found, None
    config_messages, labels = _config_and_labels(node)
    found += [Problem(node.key, Code.INVALID_CONFIG, message) for message in config_messages]
    return found, labels


def _readable(node: Node) -> bool:
    """False for a node whose config or type node_problems refuses: nothing more can be
    read from it."""
    return isinstance(node.config, dict) and node.node_type in NodeType.values


def _node_publish_problems(graph: Graph, node: Node) -> list[Problem]:
    if not _readable(node):
        return []
    found, labels = _own_problems(node)
    if labels is not None:
        found += _label_problems(graph, node, labels)
    kind = kinds.get(node.kind) if node.kind else None
    if kind is not None and node.node_type in kind.node_types:
        found += _reference_problems(graph, node, kind)
    return found


def _config_and_labels(node: Node) -> tuple[list[str], set[str] | None]:
    """The node's config problems and the labels it can end with (None: unknown, because the
    kind or the config is not valid)."""
    if node.node_type == NodeType.ENTRY:
        messages = [] if node.config == {} else ["An entry node takes no config."]
        return messages, {kinds.SUCCESS}
    if node.node_type == NodeType.OUTCOME:
        valid = node.config in ({"result": result} for result in OUTCOME_RESULTS)
        messages = [] if valid else ['An outcome\'s config is {"result": "success"|"failure"}.']
        return messages, set()
    kind = kinds.get(node.kind)
    if kind is None or node.node_type not in kind.node_types:
        return [], None  # reported by node_problems
    messages = kind.validate_config(node.config)
    return messages, (None if messages else kind.labels(node.config))


def _label_problems(graph: Graph, node: Node, labels: set[str]) -> list[Problem]:
    edges = graph.outgoing.get(node.key, [])
    if node.is_outcome:
        if not edges:
            return []
        targets = ", ".join(sorted({edge.target for edge in edges}))
        return [
            Problem(
                node.key,
                Code.OUTCOME_HAS_TRANSITIONS,
                f"An outcome ends the run; remove its transitions (to {targets}).",
            )
        ]
    covered = {edge.label for edge in edges}
    # A general node that fails for good fires "error" if a transition takes it; none must.
    allowed = labels | ({kinds.ERROR_LABEL} if node.node_type == NodeType.GENERAL else set())
    found = [
        Problem(
            node.key,
            Code.UNCOVERED_LABEL,
            f"{node.key} can end with label {label!r}, but no transition leaves it with it.",
        )
        for label in sorted(labels - covered)
    ]
    found += [
        Problem(
            node.key,
            Code.UNKNOWN_LABEL,
            f"{node.key} never ends with label {label!r} (it can end with "
            f"{', '.join(sorted(allowed))}); that transition would never fire.",
        )
        for label in sorted(covered - allowed)
    ]
    return found


def _reference_problems(graph: Graph, node: Node, kind: kinds.NodeKind) -> list[Problem]:
    found = []
    upstream: set[str] | None = None
    for reference in sorted(kind.references(node.config), key=str):
        path = reference.path
        if path[0] in templates.IDENTITY_ROOTS:
            if path != templates.IDENTITY_ROOTS[path[0]]:
                offered = ", ".join(".".join(path) for path in templates.IDENTITY_ROOTS.values())
                found.append(
                    Problem(
                        node.key,
                        Code.INVALID_REFERENCE,
                        f"{reference}: a step's identity is read as {offered}.",
                    )
                )
            continue
        if path[0] == "input":
            if len(path) < 2:
                found.append(
                    Problem(
                        node.key,
                        Code.INVALID_REFERENCE,
                        f"{reference} reads the whole input; name a field (input.<field>).",
                    )
                )
            elif path[1] not in graph.required_data:
                fields = ", ".join(graph.required_data) or "none"
                found.append(
                    Problem(
                        node.key,
                        Code.UNKNOWN_INPUT_FIELD,
                        f"{reference}: {path[1]!r} is not in required_data (fields: {fields}).",
                    )
                )
            continue
        if upstream is None:
            upstream = _closure([node.key], _predecessors(graph)) - {node.key}
        if len(path) >= 2 and path[1] not in upstream:
            where = (
                f"{path[1]} does not run before {node.key}"
                if path[1] in graph.nodes
                else f"there is no node {path[1]!r}"
            )
            found.append(
                Problem(
                    node.key,
                    Code.NOT_UPSTREAM,
                    f"{reference}: {where}; a template reads only nodes upstream of its own.",
                )
            )
        elif len(path) < 3 or path[2] not in NODE_CONTEXT_PARTS:
            found.append(
                Problem(
                    node.key,
                    Code.INVALID_REFERENCE,
                    f"{reference}: read nodes.<key>.output or nodes.<key>.label.",
                )
            )
    return found
