"""A workflow graph as an SVG picture for the admin: boxes by depth, edges with their labels.

Pure: a revision snapshot (workflows/engine/graph.py) in, SVG markup out, nothing read from the
database. Node keys, kinds and edge labels are input that operators typed, so every text goes
through ``format_html``, which escapes it (``django.utils.html.escape``).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from workflows.engine.graph import Edge, Graph, Node
from workflows.models import NodeRunStatus, NodeType

BOX_WIDTH, BOX_HEIGHT = 170, 46
GAP_X, GAP_Y, MARGIN = 30, 64, 16
KEY_CHARS, DETAIL_CHARS = 22, 26  # what fits in a box at the font sizes below

NEUTRAL = "#ffffff"
ENTRY_COLOUR = "#bbdefb"
RESULT_COLOURS = {"success": "#a5d6a7", "failure": "#ef9a9a"}
STATUS_COLOURS = {
    NodeRunStatus.PENDING: NEUTRAL,
    NodeRunStatus.READY: "#ffe082",
    NodeRunStatus.RUNNING: "#ffe082",
    NodeRunStatus.COMPLETED: "#a5d6a7",
    NodeRunStatus.FAILED: "#ef9a9a",
    NodeRunStatus.SKIPPED: "#e0e0e0",
    NodeRunStatus.CANCELLED: "#9e9e9e",
}


def graph_svg(snapshot: dict, *, statuses: Mapping[str, str] | None = None) -> SafeString:
    """The graph of ``snapshot`` top to bottom from its entry.

    Without ``statuses`` an outcome is coloured by its result and the entry is blue; with them
    (node key -> node-run status, for a run) every node is coloured by its status.
    """
    graph = Graph.from_snapshot(snapshot)
    edges = [e for e in graph.edges if e.source in graph.nodes and e.target in graph.nodes]
    layers = _layers(graph, edges)
    centres = _centres(layers, edges)
    width = max((len(layer) for layer in layers), default=1) * (BOX_WIDTH + GAP_X) - GAP_X
    height = max(len(layers), 1) * (BOX_HEIGHT + GAP_Y) - GAP_Y
    width, height = width + 2 * MARGIN, height + 2 * MARGIN
    parts = [_edge_svg(pair, labels, centres) for pair, labels in _edge_labels(edges).items()]
    parts += [_node_svg(node, centres[key], statuses) for key, node in graph.nodes.items()]
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" '
        'role="img" aria-label="workflow graph" font-family="sans-serif">'
        '<defs><marker id="wf-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker>'
        "</defs>{}</svg>",
        width,
        height,
        width,
        height,
        format_html_join("", "{}", ((part,) for part in parts)),
    )


def _layers(graph: Graph, edges: list[Edge]) -> list[list[str]]:
    """Node keys by depth: the longest path from a node with no incoming edge (the entry, in a
    published graph), so that every edge points down. Walked in topological order (Kahn); nodes
    on a cycle, which publishing refuses, are never released and go in a last layer."""
    incoming = dict.fromkeys(graph.nodes, 0)
    outgoing = defaultdict(list)
    for edge in edges:
        incoming[edge.target] += 1
        outgoing[edge.source].append(edge.target)
    depth = {key: 0 for key, count in incoming.items() if count == 0}
    ready = deque(depth)
    while ready:
        key = ready.popleft()
        for target in outgoing[key]:
            depth[target] = max(depth.get(target, 0), depth[key] + 1)
            incoming[target] -= 1
            if incoming[target] == 0:
                ready.append(target)
    stuck = max(depth.values(), default=-1) + 1
    layers: list[list[str]] = [[] for _ in range(stuck + 1)]
    for key in graph.nodes:
        layers[depth.get(key, stuck)].append(key)
    return [layer for layer in layers if layer]


def _centres(layers: list[list[str]], edges: list[Edge]) -> dict[str, tuple[int, int]]:
    """The centre of each node's box. Within a layer, a node sits under the mean position of
    its parents (the barycentre heuristic), which uncrosses most edges of a small graph."""
    parents = defaultdict(list)
    for edge in edges:
        parents[edge.target].append(edge.source)
    widest = max((len(layer) for layer in layers), default=0)
    step_x, step_y = BOX_WIDTH + GAP_X, BOX_HEIGHT + GAP_Y
    centres: dict[str, tuple[int, int]] = {}

    def barycentre(key: str) -> float:
        placed = [centres[parent][0] for parent in parents[key] if parent in centres]
        return sum(placed) / len(placed) if placed else 0.0

    for row, layer in enumerate(layers):
        ordered = sorted(layer, key=barycentre) if row else layer
        left = MARGIN + (widest - len(layer)) * step_x // 2
        for column, key in enumerate(ordered):
            centres[key] = (left + column * step_x + BOX_WIDTH // 2, MARGIN + row * step_y)
    return centres


def _edge_labels(edges: list[Edge]) -> dict[tuple[str, str], list[str]]:
    """One line per pair of nodes: several labels between the same two nodes share it."""
    labels: dict[tuple[str, str], list[str]] = defaultdict(list)
    for edge in edges:
        labels[(edge.source, edge.target)].append(edge.label)
    return labels


def _edge_svg(
    pair: tuple[str, str], labels: list[str], centres: dict[str, tuple[int, int]]
) -> SafeString:
    (x1, top1), (x2, top2) = centres[pair[0]], centres[pair[1]]
    y1, y2 = top1 + BOX_HEIGHT, top2
    return format_html(
        '<g class="edge"><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#555" '
        'stroke-width="1.5" marker-end="url(#wf-arrow)"/>'
        '<text x="{}" y="{}" text-anchor="middle" font-size="11" fill="#333" '
        'stroke="#fff" stroke-width="3" paint-order="stroke">{}</text></g>',
        x1,
        y1,
        x2,
        y2,
        (x1 + x2) // 2,
        (y1 + y2) // 2 + 4,
        _clip(", ".join(labels), DETAIL_CHARS),
    )


def _node_svg(
    node: Node, centre: tuple[int, int], statuses: Mapping[str, str] | None
) -> SafeString:
    x, top = centre
    if statuses is None:
        fill, detail, title = _static_look(node), _describe(node), node.key
    else:
        status = statuses.get(node.key, "")
        fill, detail = STATUS_COLOURS.get(status, NEUTRAL), status or "no node run"
        title = f"{node.key}: {detail}"
    return format_html(
        '<g class="node" data-key="{}"><title>{}</title>'
        '<rect x="{}" y="{}" width="{}" height="{}" rx="6" fill="{}" stroke="#333"/>'
        '<text x="{}" y="{}" text-anchor="middle" font-size="13" font-weight="bold">{}</text>'
        '<text x="{}" y="{}" text-anchor="middle" font-size="11" fill="#444">{}</text></g>',
        node.key,
        title,
        x - BOX_WIDTH // 2,
        top,
        BOX_WIDTH,
        BOX_HEIGHT,
        fill,
        x,
        top + 19,
        _clip(node.key, KEY_CHARS),
        x,
        top + 36,
        _clip(detail, DETAIL_CHARS),
    )


def _static_look(node: Node) -> str:
    if node.node_type == NodeType.ENTRY:
        return ENTRY_COLOUR
    if node.is_outcome:
        return RESULT_COLOURS.get(node.config.get("result"), NEUTRAL)
    return NEUTRAL


def _describe(node: Node) -> str:
    if node.is_outcome:
        return f"outcome: {node.config.get('result', '?')}"
    return f"{node.node_type}: {node.kind}" if node.kind else node.node_type


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 1]}…"
