"""A workflow graph as an SVG picture: boxes in layers from the entry down, edges routed
around the boxes, labels where they can be read.

Pure: a revision snapshot (workflows/engine/graph.py) in, SVG markup out, nothing read from the
database. Node keys, configs and edge labels are input that operators typed, so every text goes
through ``format_html``, which escapes it (``django.utils.html.escape``).

The layout (workflows/drawing/graph_layout.py) keeps every edge out of every box but its own
two and every label clear of boxes and of other labels.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from rcm import svg
from workflows.drawing.graph_layout import LABEL_SIZE, Layout, Link, Point, Rect, clip, text_width
from workflows.engine import templates
from workflows.engine.graph import Graph, Node
from workflows.engine.retry import RetryPolicy
from workflows.models import NodeRunStatus, NodeType, RunResult

KEY_SIZE, DETAIL_SIZE = 13, 11  # pixels
BOX_MIN_WIDTH, BOX_MAX_WIDTH, BOX_PADDING = 150, 280, 10
BOX_HEIGHT, RUN_BOX_HEIGHT = 46, 62  # a run's boxes add a line: the node run's status
MARGIN = 16

NEUTRAL = "#ffffff"
ENTRY_COLOUR = "#bbdefb"
RESULT_COLOURS = {RunResult.SUCCESS: "#a5d6a7", RunResult.FAILURE: "#ef9a9a"}
STATUS_COLOURS = {
    NodeRunStatus.PENDING: NEUTRAL,
    NodeRunStatus.READY: "#ffe082",
    NodeRunStatus.RUNNING: "#ffe082",
    NodeRunStatus.COMPLETED: "#a5d6a7",
    NodeRunStatus.FAILED: "#ef9a9a",
    NodeRunStatus.SKIPPED: "#e0e0e0",
    NodeRunStatus.CANCELLED: "#9e9e9e",
}
PROBLEM_COLOUR = "#c62828"
# Edge styles: (stroke, width, arrow marker, label colour).
EDGE_PLAIN = ("#555555", 1.5, "wf-arrow", "#333333")
EDGE_TAKEN = ("#1565c0", 3.0, "wf-arrow-taken", "#0d47a1")
EDGE_NOT_TAKEN = ("#c4c4c4", 1.2, "wf-arrow-faint", "#9e9e9e")


# -- what a node does ----------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """What a node does: ``short`` for its box, ``full`` for its tooltip and the editor."""

    short: str
    full: str


def node_summary(node: Node, endpoint_names: Mapping[int, str] | None = None) -> Summary:
    """What ``node`` does, read from its type, kind and config. A draft's config may be
    incomplete or malformed, so every value is checked before it is read."""
    config = node.config if isinstance(node.config, dict) else {}
    if node.node_type == NodeType.ENTRY:
        return Summary("entry: starts the run", "entry: starts the run")
    if node.is_outcome:
        text = f"outcome: {config.get('result', 'no result yet')}"
        return Summary(text, text)
    describe = _KIND_SUMMARIES.get(node.kind)
    if describe is not None:
        return describe(config, endpoint_names or {})
    text = f"{node.node_type}: {node.kind}" if node.kind else f"{node.node_type}: no kind yet"
    return Summary(text, text)


def _http_summary(config: dict, endpoint_names) -> Summary:
    method = config.get("method", "GET")
    url = config.get("url")
    if not isinstance(url, str) or not url:
        return Summary(f"http {method}, no URL yet", f"http {method}, no URL yet")
    segments = [part for part in urlsplit(url).path.split("/") if part]
    if len(segments) > 1:
        where = f"…/{segments[-1]}"
    elif segments:
        where = f"/{segments[0]}"
    else:
        where = urlsplit(url).netloc or url
    full = f"http {method} {url}"
    labels = config.get("status_labels")
    if isinstance(labels, dict) and labels:
        full += "; " + ", ".join(f"{code} → {label}" for code, label in labels.items())
    return Summary(f"http {method} {where}", full)


def _decision_summary(config: dict, endpoint_names) -> Summary:
    conditions = config.get("conditions")
    conditions = (
        [c for c in conditions if isinstance(c, dict)] if isinstance(conditions, list) else []
    )
    whens = [c["when"] for c in conditions if isinstance(c.get("when"), str)]
    read = sorted(str(reference) for reference in templates.references(whens, expression=True))
    short = f"decision on {', '.join(read)}" if read else "decision"
    rules = [f"{c.get('when')} → {c.get('label')}" for c in conditions]
    if "default" in config:
        rules.append(f"otherwise → {config['default']}")
    return Summary(short, f"decision: {'; '.join(rules)}" if rules else short)


def _web_summary(config: dict, endpoint_names) -> Summary:
    actions = config.get("actions")
    count = len(actions) if isinstance(actions, list) else 0
    endpoint = config.get("endpoint")
    if isinstance(endpoint, int) and not isinstance(endpoint, bool):
        where = endpoint_names.get(endpoint) or f"endpoint {endpoint}"
    else:
        where = "no endpoint yet"
    text = f"web: {count} action{'' if count == 1 else 's'} on {where}"
    outcomes = config.get("outcomes")
    full = text
    if isinstance(outcomes, dict) and outcomes:
        full += "; outcomes: " + ", ".join(str(label) for label in outcomes)
    return Summary(text, full)


def _transform_summary(config: dict, endpoint_names) -> Summary:
    outputs = config.get("outputs")
    names = [str(name) for name in outputs] if isinstance(outputs, dict) else []
    text = f"transform into {', '.join(names)}" if names else "transform"
    return Summary(text, text)


def _wait_summary(config: dict, endpoint_names) -> Summary:
    seconds = config.get("seconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return Summary("wait", "wait")
    text = f"wait {_duration(seconds)}"
    return Summary(text, text)


def _noop_summary(config: dict, endpoint_names) -> Summary:
    return Summary("noop: does nothing", "noop: does nothing and succeeds")


_KIND_SUMMARIES = {
    "http": _http_summary,
    "decision": _decision_summary,
    "web": _web_summary,
    "transform": _transform_summary,
    "wait": _wait_summary,
    "noop": _noop_summary,
}


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def retry_summary(node: Node) -> str:
    """A node's retry policy in words, its defaults filled in (workflows/engine/retry.py)."""
    if node.node_type != NodeType.GENERAL:
        return "—"
    if not isinstance(node.retry_policy, dict):
        return "not valid"
    try:
        policy = RetryPolicy.from_config(node.retry_policy)
    except (TypeError, ValueError):
        return "not valid"
    if policy.maximum_attempts <= 1:
        return "no retries (1 attempt)"
    text = (
        f"{policy.maximum_attempts} attempts, after {_duration(policy.initial_interval_s)} "
        f"×{policy.backoff_coefficient:g} up to {_duration(policy.maximum_interval_s)}"
    )
    if policy.non_retryable_error_kinds:
        text += f"; never on {', '.join(sorted(policy.non_retryable_error_kinds))}"
    return text if node.retry_policy else f"default: {text}"


# -- the picture ---------------------------------------------------------------------------


def graph_svg(
    snapshot: dict,
    *,
    statuses: Mapping[str, str] | None = None,
    taken: Collection[tuple[str, str]] | None = None,
    marked: Collection[str] = (),
    endpoint_names: Mapping[int, str] | None = None,
) -> SafeString:
    """The graph of ``snapshot`` top to bottom from its entry.

    Without ``statuses`` an outcome is coloured by its result and the entry is blue; with them
    (node key -> node-run status, for a run) every node is coloured by its status, which a
    third line names. ``taken`` (the (source, target) pairs whose transition fired, for a run)
    draws those edges thick and blue and the others faint. ``marked`` nodes (those with
    problems, in the editor) get a red frame. ``endpoint_names`` names the endpoints web nodes
    act on (id -> name); without it they are named by id.
    """
    graph = Graph.from_snapshot(snapshot)
    boxes = {
        key: _box(node, statuses, key in marked, endpoint_names)
        for key, node in graph.nodes.items()
    }
    height = BOX_HEIGHT if statuses is None else RUN_BOX_HEIGHT
    layout = Layout(graph, {key: box.width for key, box in boxes.items()}, height)
    left, right = layout.horizontal_extent()
    offset_x, offset_y = MARGIN - left, MARGIN
    width = right - left + 2 * MARGIN
    total_height = layout.bottom() + 2 * MARGIN
    edges, labels = [], []
    for index, link in enumerate(layout.links):
        style = EDGE_PLAIN
        if taken is not None:
            style = EDGE_TAKEN if (link.source, link.target) in taken else EDGE_NOT_TAKEN
        edges.append(_edge_svg(link, layout.path(index), style, offset_x, offset_y))
        labels.append(_label_svg(link, layout.labels[index], style, offset_x, offset_y))
    nodes = [_node_svg(boxes[key], layout.box(key), offset_x, offset_y) for key in graph.nodes]
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="wf-graph" width="{}" height="{}" '
        'viewBox="0 0 {} {}" role="img" aria-label="workflow graph" font-family="sans-serif">'
        "<defs>{}</defs>"
        '<rect class="paper" x="0" y="0" width="{}" height="{}" rx="4" fill="#ffffff"/>'
        "{}{}{}</svg>",
        svg.number(width),
        svg.number(total_height),
        svg.number(width),
        svg.number(total_height),
        format_html_join(
            "",
            '<marker id="{}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
            'markerHeight="7" markerUnits="userSpaceOnUse" orient="auto">'
            '<path d="M0,0 L10,5 L0,10 z" fill="{}"/></marker>',
            ((marker, stroke) for stroke, _, marker, _ in (EDGE_PLAIN, EDGE_TAKEN, EDGE_NOT_TAKEN)),
        ),
        svg.number(width),
        svg.number(total_height),
        svg.joined(edges),
        svg.joined(labels),
        svg.joined(nodes),
    )


@dataclass(frozen=True)
class _Box:
    key: str
    fill: str
    lines: tuple[str, ...]  # key, what it does (and, for a run, the status)
    title: str
    width: float
    marked: bool


def _box(node: Node, statuses: Mapping[str, str] | None, marked: bool, endpoint_names) -> _Box:
    summary = node_summary(node, endpoint_names)
    lines = [node.key, summary.short]
    title = f"{node.key}\n{summary.full}"
    if statuses is None:
        fill = _static_fill(node)
    else:
        status = statuses.get(node.key, "")
        fill = STATUS_COLOURS.get(status, NEUTRAL)
        lines.append(status or "no node run")
        title += f"\n{status or 'no node run'}"
    if marked:
        title += "\nhas problems: see its row"
    wanted = max(
        text_width(node.key, KEY_SIZE, bold=True),
        *(text_width(line, DETAIL_SIZE) for line in lines[1:]),
    )
    width = min(max(wanted + 2 * BOX_PADDING, BOX_MIN_WIDTH), BOX_MAX_WIDTH)
    return _Box(node.key, fill, tuple(lines), title, width, marked)


def _static_fill(node: Node) -> str:
    if node.node_type == NodeType.ENTRY:
        return ENTRY_COLOUR
    if node.is_outcome and isinstance(node.config, dict):
        return RESULT_COLOURS.get(node.config.get("result"), NEUTRAL)
    return NEUTRAL


def _node_svg(box: _Box, rect: Rect, dx: float, dy: float):
    x, y, width, height = rect
    x, y = x + dx, y + dy
    inner = width - 2 * BOX_PADDING
    texts = [
        format_html(
            '<text x="{}" y="{}" text-anchor="middle" font-size="{}" font-weight="bold" '
            'fill="#111111">{}</text>',
            svg.number(x + width / 2),
            svg.number(y + 19),
            KEY_SIZE,
            clip(box.key, inner, KEY_SIZE, bold=True),
        )
    ]
    for number, line in enumerate(box.lines[1:]):
        texts.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="middle" font-size="{}" fill="#444444"{}>{}'
                "</text>",
                svg.number(x + width / 2),
                svg.number(y + 36 + 15 * number),
                DETAIL_SIZE,
                SafeString(' font-style="italic"') if number else "",
                clip(line, inner, DETAIL_SIZE),
            )
        )
    stroke, stroke_width = (PROBLEM_COLOUR, 3) if box.marked else ("#333333", 1)
    return format_html(
        '<g class="node{}" data-key="{}"><title>{}</title>'
        '<rect x="{}" y="{}" width="{}" height="{}" rx="6" fill="{}" stroke="{}" '
        'stroke-width="{}"/>{}</g>',
        " marked" if box.marked else "",
        box.key,
        box.title,
        svg.number(x),
        svg.number(y),
        svg.number(width),
        svg.number(height),
        box.fill,
        stroke,
        stroke_width,
        svg.joined(texts),
    )


def _edge_svg(link: Link, points: list[Point], style, dx: float, dy: float):
    stroke, width, marker, _ = style
    return format_html(
        '<g class="edge" data-source="{}" data-target="{}"><path d="{}" fill="none" '
        'stroke="{}" stroke-width="{}" marker-end="url(#{})"/></g>',
        link.source,
        link.target,
        _path_data(points, dx, dy),
        stroke,
        width,
        marker,
    )


def _path_data(points: list[Point], dx: float, dy: float) -> str:
    """Gaps (even segments) as S-curves with both control points at mid-gap height, so the
    curve never leaves the gap; rows (odd segments) as straight vertical lines."""
    (x, y), *rest = points
    parts = [f"M{svg.number(x + dx)},{svg.number(y + dy)}"]
    for number, (end_x, end_y) in enumerate(rest):
        if number % 2:
            parts.append(f"L{svg.number(end_x + dx)},{svg.number(end_y + dy)}")
        else:
            middle = (y + end_y) / 2 + dy
            parts.append(
                f"C{svg.number(x + dx)},{svg.number(middle)} "
                f"{svg.number(end_x + dx)},{svg.number(middle)} "
                f"{svg.number(end_x + dx)},{svg.number(end_y + dy)}"
            )
        x, y = end_x, end_y
    return " ".join(parts)


def _label_svg(link: Link, plate: Rect, style, dx, dy):
    x, y, width, height = plate
    full = ", ".join(link.labels)
    return format_html(
        '<g class="edge-label" data-source="{}" data-target="{}"><title>{} → {}: {}</title>'
        '<rect class="label-plate" x="{}" y="{}" width="{}" height="{}" rx="3" '
        'fill="#ffffff" fill-opacity="0.92"/>'
        '<text x="{}" y="{}" text-anchor="middle" font-size="{}" fill="{}">{}</text></g>',
        link.source,
        link.target,
        link.source,
        link.target,
        full,
        svg.number(x + dx),
        svg.number(y + dy),
        svg.number(width),
        svg.number(height),
        svg.number(x + dx + width / 2),
        svg.number(y + dy + height - 4),
        LABEL_SIZE,
        style[3],
        link.label_text,
    )
