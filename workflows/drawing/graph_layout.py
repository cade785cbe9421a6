"""Where the boxes, edges and labels of a workflow graph go: a layered (Sugiyama) layout,
written out because Graphviz is not installed. ``workflows/drawing/graph.py`` draws it.

1. **Layers.** Edges that close a cycle (a draft may hold one; publishing refuses it) are
   turned round, so that the rest is acyclic; each node goes one layer below the longest path
   leading to it, and a node without a way in (but the entry) sits just above its first
   successor.
2. **Waypoints.** An edge that skips layers gets a waypoint in every layer it passes: a slot
   of its own in that layer's row, so the edge goes *between* the boxes, never through one.
3. **Order.** Within each layer, elements are sorted by the mean position of their
   neighbours (the barycentre), sweeping down and up; the order with the fewest crossings wins.
4. **Places.** Each element moves as close to its neighbours' mean as the row allows: a
   least-squares fit under "keep the order and the spacing" (pool-adjacent-violators), again
   sweeping down and up, which keeps long edges straight and parents over their children.
5. **Routes.** Inside a layer's row an edge is a vertical line through its slot; between two
   rows it is an S-curve whose control points stay in the gap, so no curve can reach a box.
6. **Labels.** An edge's label sits on its own curve in the gap next to its source, on a
   plate, in the free row nearest the gap's middle (first one no other edge crosses); a gap
   too crowded for its labels grows a row and everything below moves down.

Text width is estimated from the number of characters (no font metrics on the server), with a
margin, so that a label's plate is never narrower than its text.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import pairwise

from workflows.engine.graph import Graph
from workflows.models import NodeType

# Sizes, in pixels. The widths of a character are sans-serif averages (DejaVu, Liberation,
# Helvetica) rounded up, so a measured text is a little wider than the drawn one.
CHAR_EM, BOLD_CHAR_EM = 0.62, 0.68
LABEL_SIZE, LABEL_HEIGHT, LABEL_PAD, LABEL_CHARS = 11, 15, 3, 40
BOX_GAP = 40  # between two boxes of a layer
LANE = 18  # between an edge passing a layer and its neighbours in the row
PORT_SPACING, PORT_INSET = 14, 14  # edges leaving or entering one side of a box
GAP_Y = 60  # between two layers, before labels ask for more
ARROW_ROOM = 10  # kept free above a box for the arrowheads
ORDER_SWEEPS, PLACE_SWEEPS = 12, 8
# Past this many boxes and waypoints a sweep costs more than it gains (each later sweep moves
# little): a big graph gets the first few sweeps only, so that a page never waits seconds.
BIG_LAYOUT, BIG_SWEEPS = 5000, 3
CURVE_SAMPLES = 32  # straight pieces per curve when testing what it crosses
CLEAR_SPOT_ROWS = 3  # rows a gap may grow by to find its labels spots no edge crosses

Rect = tuple[float, float, float, float]  # x, y, width, height
Point = tuple[float, float]


def text_width(text: str, size: int, *, bold: bool = False) -> float:
    return len(text) * size * (BOLD_CHAR_EM if bold else CHAR_EM)


def clip(text: str, width: float, size: int, *, bold: bool = False) -> str:
    """``text`` cut with an ellipsis to what fits in ``width`` pixels."""
    # The small addition absorbs float error: a text measured to fit exactly must not be cut.
    limit = max(int(width / (size * (BOLD_CHAR_EM if bold else CHAR_EM)) + 1e-6), 2)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


@dataclass
class Link:
    """One drawn edge: every transition from ``source`` to ``target`` (their labels joined).
    ``upper`` and ``lower`` are its ends in layer order: the other way round for an edge
    that closes a cycle, which is drawn upwards."""

    source: str
    target: str
    labels: list[str]
    upper: str = ""
    lower: str = ""
    chain: list = field(default_factory=list)  # upper, its waypoints, lower

    @property
    def upwards(self) -> bool:
        return self.upper != self.source

    @property
    def label_text(self) -> str:
        text = ", ".join(self.labels)
        return text if len(text) <= LABEL_CHARS else f"{text[: LABEL_CHARS - 1]}…"


class Layout:
    """Where every box, edge and label of one graph goes (the steps in the module's
    docstring). Coordinates start at 0 at the top left of the first layer; the caller
    shifts them into the margin."""

    def __init__(self, graph: Graph, widths: dict[str, float], box_height: int):
        self.keys = list(graph.nodes)
        self.box_height = box_height
        self.links = _links(graph)
        self._turn_cycles_round(graph)
        self.layer_of = self._layers(graph)
        self.rows = self._rows()
        # A waypoint is a line, not a box: it takes no width, only the lane around it.
        self.width = {
            item: widths.get(item, 0.0) if isinstance(item, str) else 0.0
            for row in self.rows
            for item in row
        }
        self.up: dict = defaultdict(list)
        self.down: dict = defaultdict(list)
        for link in self.links:
            for upper, lower in pairwise(link.chain):
                self.down[upper].append(lower)
                self.up[lower].append(upper)
        self.rows = self._order(self.rows)
        self.x = self._place()
        self.ports = self._ports()
        self.gaps = [float(GAP_Y)] * max(len(self.rows) - 1, 0)
        self._tops: list[float] = []
        self._tops_for: list[float] | None = None
        self.labels = self._labels()

    # 1. layers

    def _turn_cycles_round(self, graph: Graph) -> None:
        """Depth-first from the entry (then from each node not reached yet, in the graph's
        order); an edge back to a node still on the path closes a cycle and is turned."""
        outgoing = defaultdict(list)
        for link in self.links:
            outgoing[link.source].append(link)
        entries = [node.key for node in graph.entries]
        state: dict[str, str] = {}
        for root in [*entries, *self.keys]:
            if root in state:
                continue
            state[root] = "open"
            stack = [(root, iter(outgoing[root]))]
            while stack:
                key, pending = stack[-1]
                link = next(pending, None)
                if link is None:
                    state[key] = "done"
                    stack.pop()
                    continue
                if state.get(link.target) == "open":
                    link.upper, link.lower = link.target, link.source
                    continue
                link.upper, link.lower = link.source, link.target
                if link.target not in state:
                    state[link.target] = "open"
                    stack.append((link.target, iter(outgoing[link.target])))

    def _layers(self, graph: Graph) -> dict[str, int]:
        """Longest path from a node without a way in (Kahn's order over the turned edges);
        then such a node, unless it is an entry, moves down to just above its first
        successor, so that a node added without a way in yet does not hang from the top."""
        below = defaultdict(list)
        waiting = dict.fromkeys(self.keys, 0)
        for link in self.links:
            below[link.upper].append(link.lower)
            waiting[link.lower] += 1
        sources = [key for key in self.keys if waiting[key] == 0]
        layer = dict.fromkeys(self.keys, 0)
        ready = list(sources)
        while ready:
            key = ready.pop()
            for other in below[key]:
                layer[other] = max(layer[other], layer[key] + 1)
                waiting[other] -= 1
                if waiting[other] == 0:
                    ready.append(other)
        for key in sources:
            if below[key] and graph.nodes[key].node_type != NodeType.ENTRY:
                layer[key] = min(layer[other] for other in below[key]) - 1
        return layer

    # 2. waypoints

    def _rows(self) -> list[list]:
        """Each layer's elements: node keys, and (link number, layer) for a waypoint."""
        count = max(self.layer_of.values(), default=-1) + 1
        rows: list[list] = [[] for _ in range(count)]
        for key in self.keys:
            rows[self.layer_of[key]].append(key)
        for number, link in enumerate(self.links):
            top, bottom = self.layer_of[link.upper], self.layer_of[link.lower]
            waypoints = [(number, layer) for layer in range(top + 1, bottom)]
            for waypoint in waypoints:
                rows[waypoint[1]].append(waypoint)
            link.chain = [link.upper, *waypoints, link.lower]
        return rows

    # 3. order

    def _sweeps(self, wanted: int) -> int:
        elements = sum(len(row) for row in self.rows)
        return min(wanted, BIG_SWEEPS) if elements > BIG_LAYOUT else wanted

    def _order(self, rows: list[list]) -> list[list]:
        best, fewest = [list(row) for row in rows], _crossings(rows, self.down)
        current = [list(row) for row in rows]
        for sweep in range(self._sweeps(ORDER_SWEEPS)):
            downwards = sweep % 2 == 0
            numbers = range(1, len(current)) if downwards else range(len(current) - 2, -1, -1)
            for number in numbers:
                reference = current[number - 1] if downwards else current[number + 1]
                neighbours = self.up if downwards else self.down
                current[number] = _by_barycentre(current[number], reference, neighbours)
            crossings = _crossings(current, self.down)
            if crossings < fewest:
                best, fewest = [list(row) for row in current], crossings
        return best

    # 4. places

    def _separation(self, left, right) -> float:
        both_boxes = isinstance(left, str) and isinstance(right, str)
        return (self.width[left] + self.width[right]) / 2 + (BOX_GAP if both_boxes else LANE)

    def _place(self) -> dict:
        x: dict = {}
        for row in self.rows:
            position = 0.0
            for number, item in enumerate(row):
                if number:
                    position += self._separation(row[number - 1], item)
                x[item] = position
        for sweep in range(self._sweeps(PLACE_SWEEPS)):
            downwards = sweep % 2 == 0
            numbers = range(1, len(self.rows)) if downwards else range(len(self.rows) - 2, -1, -1)
            neighbours = self.up if downwards else self.down
            for number in numbers:
                row = self.rows[number]
                wanted = [
                    sum(x[other] for other in neighbours[item]) / len(neighbours[item])
                    if neighbours[item]
                    else x[item]
                    for item in row
                ]
                spacing = [self._separation(left, right) for left, right in pairwise(row)]
                for item, position in zip(row, _fit(wanted, spacing), strict=True):
                    x[item] = position
        return x

    # 5. routes

    def _ports(self) -> dict[tuple[int, str], float]:
        """Where each link leaves its upper box (bottom side) and enters its lower box (top
        side): spread along the side in the order of where the links go, so that they do
        not cross at the box."""
        sides = defaultdict(list)
        for number, link in enumerate(self.links):
            sides[(link.upper, "bottom")].append((self.x[link.chain[1]], number))
            sides[(link.lower, "top")].append((self.x[link.chain[-2]], number))
        ports = {}
        for (key, side), ends in sides.items():
            ends.sort()
            usable = self.width[key] - 2 * PORT_INSET
            spacing = min(PORT_SPACING, usable / (len(ends) - 1)) if len(ends) > 1 else 0
            for place, (_, number) in enumerate(ends):
                ports[(number, side)] = self.x[key] + (place - (len(ends) - 1) / 2) * spacing
        return ports

    def top(self, layer: int) -> float:
        # Asked for every point of every route: summed once per change of the gaps, not per
        # call (a route that skips 400 layers would otherwise sum 400 gaps 800 times).
        if self._tops_for != self.gaps:
            self._tops, self._tops_for = [0.0], list(self.gaps)
            for gap in self.gaps:
                self._tops.append(self._tops[-1] + self.box_height + gap)
        return self._tops[layer]

    def bottom(self) -> float:
        return self.top(len(self.rows) - 1) + self.box_height if self.rows else 0.0

    def box(self, key: str) -> Rect:
        width = self.width[key]
        return (self.x[key] - width / 2, self.top(self.layer_of[key]), width, self.box_height)

    def _points(self, number: int) -> list[Point]:
        """The link's route from upper to lower: its port under the upper box, in and out of
        each waypoint's row, its port over the lower box."""
        link = self.links[number]
        points = [
            (self.ports[(number, "bottom")], self.top(self.layer_of[link.upper]) + self.box_height)
        ]
        for waypoint in link.chain[1:-1]:
            top = self.top(waypoint[1])
            points += [(self.x[waypoint], top), (self.x[waypoint], top + self.box_height)]
        points.append((self.ports[(number, "top")], self.top(self.layer_of[link.lower])))
        return points

    def path(self, number: int) -> list[Point]:
        """The link's route from its source to its target."""
        points = self._points(number)
        return points[::-1] if self.links[number].upwards else points

    def horizontal_extent(self) -> tuple[float, float]:
        """The leftmost and rightmost x of any box or label (curves stay between their
        ends, which are on boxes)."""
        edges = [
            (self.x[item] - self.width[item] / 2, self.x[item] + self.width[item] / 2)
            for row in self.rows
            for item in row
        ]
        edges += [(x, x + width) for x, _, width, _ in self.labels]
        if not edges:
            return 0.0, 0.0
        return min(left for left, _ in edges), max(right for _, right in edges)

    # 6. labels

    def _labels(self) -> list[Rect]:
        """Each link's label plate (x, y, width, height), in the gap next to its source.

        Each gap is solved on its own, in its own coordinates (its curves run from x_top at
        height 0 to x_bottom at the gap's height), so that growing one moves the others
        without placing them again. A gap whose labels find no clear spot (one no other edge
        crosses) grows a row, a few times at most; then a spot that some edge crosses will do
        (the plate hides the line). A gap with a row per label fits them all, so growing ends.
        """
        crossing: dict[int, list[tuple[int, float, float]]] = defaultdict(list)
        wanted: dict[int, list[int]] = defaultdict(list)
        for number, link in enumerate(self.links):
            first = self.layer_of[link.upper]
            tops = [self.ports[(number, "bottom")], *(self.x[w] for w in link.chain[1:-1])]
            bottoms = [*(self.x[w] for w in link.chain[1:-1]), self.ports[(number, "top")]]
            for step, ends in enumerate(zip(tops, bottoms, strict=True)):
                crossing[first + step].append((number, *ends))
            # Next to the source: the first gap, or the last for an edge drawn upwards.
            wanted[self.layer_of[link.lower] - 1 if link.upwards else first].append(number)
        local: dict[int, Rect] = {}
        for gap, numbers in wanted.items():
            roomy = GAP_Y + (LABEL_HEIGHT + LABEL_PAD) * min(len(numbers), CLEAR_SPOT_ROWS)
            while True:
                placed = self._place_labels(
                    gap, numbers, crossing[gap], clear_only=self.gaps[gap] < roomy
                )
                if placed is not None:
                    break
                self.gaps[gap] += LABEL_HEIGHT + LABEL_PAD
            local.update(placed)
        plates = []
        for number, (x, y, width, height) in sorted(local.items()):
            link = self.links[number]
            gap = self.layer_of[link.lower] - 1 if link.upwards else self.layer_of[link.upper]
            plates.append((x, y + self.top(gap) + self.box_height, width, height))
        return plates

    def _place_labels(
        self, gap: int, numbers: list[int], crossing, *, clear_only: bool
    ) -> dict[int, Rect] | None:
        """Plates (in the gap's coordinates) for the labels of ``numbers``, or None if one
        finds no place: a row where its plate overlaps no other plate and (first, or only, if
        ``clear_only``) where no other edge crosses it. Rows nearer the middle come first."""
        height = self.gaps[gap]
        upper, lower = LABEL_PAD, height - ARROW_ROOM
        centres = []
        centre = upper + LABEL_HEIGHT / 2
        while centre + LABEL_HEIGHT / 2 <= lower:
            centres.append(centre)
            centre += LABEL_HEIGHT + LABEL_PAD
        centres.sort(key=lambda y: abs(y - (upper + lower) / 2))
        curves = {
            number: ((top, 0.0), (bottom, height), min(top, bottom), max(top, bottom))
            for number, top, bottom in crossing
        }
        lines: dict[int, list[Point]] = {}
        placed: dict[int, Rect] = {}
        for number in sorted(numbers, key=lambda n: curves[n][0][0] + curves[n][1][0]):
            start, end, _, _ = curves[number]
            width = text_width(self.links[number].label_text, LABEL_SIZE) + 8
            plate = None
            for clear in (True,) if clear_only else (True, False):
                for y in centres:
                    x = _curve_point(start, end, _curve_t_at(start, end, y))[0]
                    candidate = (x - width / 2, y - LABEL_HEIGHT / 2, width, LABEL_HEIGHT)
                    if any(_overlap(candidate, other) for other in placed.values()):
                        continue
                    if clear and self._crossed(candidate, number, curves, lines):
                        continue
                    plate = candidate
                    break
                if plate is not None:
                    break
            if plate is None:
                return None
            placed[number] = plate
        return placed

    @staticmethod
    def _crossed(rect: Rect, own: int, curves: dict, lines: dict) -> bool:
        """Whether a curve other than ``own`` crosses ``rect``. Only curves whose span of x
        reaches it are drawn as lines (once each), and of those only the pieces at the
        rect's height are tested (a gap's curves all run downwards: their heights sort)."""
        left, top, width, height = rect
        for number, (start, end, low, high) in curves.items():
            if number == own or high < left or low > left + width:
                continue
            if number not in lines:
                points = [
                    _curve_point(start, end, step / CURVE_SAMPLES)
                    for step in range(CURVE_SAMPLES + 1)
                ]
                lines[number] = (points, [y for _, y in points])
            points, heights = lines[number]
            first = max(bisect_left(heights, top) - 1, 0)
            last = min(bisect_right(heights, top + height), len(points) - 1)
            if any(_segment_meets(points[i], points[i + 1], rect) for i in range(first, last)):
                return True
        return False


def _links(graph: Graph) -> list[Link]:
    """One link per pair of nodes, its labels joined; transitions to or from a node the
    snapshot lacks, and loops on one node (refused on save), are not drawn."""
    links: dict[tuple[str, str], Link] = {}
    for edge in graph.edges:
        if edge.source not in graph.nodes or edge.target not in graph.nodes:
            continue
        if edge.source == edge.target:
            continue
        pair = (edge.source, edge.target)
        if pair not in links:
            links[pair] = Link(edge.source, edge.target, [])
        links[pair].labels.append(edge.label)
    return list(links.values())


def _by_barycentre(row: list, reference: list, neighbours: dict) -> list:
    """``row`` sorted by the mean place of each element's neighbours in ``reference``; an
    element without any keeps its place (a stable sort keeps ties in their order)."""
    place = {item: number for number, item in enumerate(reference)}

    def barycentre(numbered):
        number, item = numbered
        seen = [place[other] for other in neighbours[item] if other in place]
        return sum(seen) / len(seen) if seen else number

    return [item for _, item in sorted(enumerate(row), key=barycentre)]


def _crossings(rows: list[list], down: dict) -> int:
    """How many pairs of edges cross between consecutive layers: with the edges of a gap
    sorted by their upper end, the pairs whose lower ends come in the other order (strict
    inversions), counted with a Fenwick tree in O(E log E). Pair by pair was O(E²) a sweep,
    seconds on a few hundred nodes."""
    total = 0
    for upper, lower in pairwise(rows):
        place = {item: number for number, item in enumerate(lower)}
        ends = sorted(
            (number, place[other]) for number, item in enumerate(upper) for other in down[item]
        )
        tree = [0] * (len(lower) + 1)
        for seen, (_, end) in enumerate(ends):
            # Edges already counted whose lower end is at most this one's do not cross it.
            index, not_after = end + 1, 0
            while index:
                not_after += tree[index]
                index -= index & -index
            total += seen - not_after
            index = end + 1
            while index <= len(lower):
                tree[index] += 1
                index += index & -index
    return total


def _fit(wanted: list[float], spacing: list[float]) -> list[float]:
    """Positions as close to ``wanted`` as possible (least squares) that keep the order and
    at least ``spacing[i]`` between elements i and i+1: pool-adjacent-violators on the
    positions minus their minimal offsets, which must then merely not decrease."""
    offsets = [0.0]
    for step in spacing:
        offsets.append(offsets[-1] + step)
    blocks: list[list[float]] = []  # [sum, count] of pooled targets
    for target, offset in zip(wanted, offsets, strict=True):
        blocks.append([target - offset, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    pooled = [total / count for total, count in blocks for _ in range(int(count))]
    return [value + offset for value, offset in zip(pooled, offsets, strict=True)]


def _curve_point(start, end, t: float) -> tuple[float, float]:
    """The point at ``t`` of the S-curve drawn from ``start`` to ``end``: both control points
    at mid-height, over each end (workflows/drawing/graph.py draws it so)."""
    (x0, y0), (x1, y1) = start, end
    middle = (y0 + y1) / 2
    a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3
    return (x0 * (a + b) + x1 * (c + d), y0 * a + middle * (b + c) + y1 * d)


def _curve_t_at(start, end, y: float) -> float:
    """Where the curve is at height ``y``: its height grows with t, so bisect."""
    low, high = 0.0, 1.0
    downwards = end[1] >= start[1]
    for _ in range(24):  # to a millionth of the gap: far below a pixel
        t = (low + high) / 2
        if (_curve_point(start, end, t)[1] < y) == downwards:
            low = t
        else:
            high = t
    return (low + high) / 2


def _overlap(first, second, pad: float = 1.0) -> bool:
    x1, y1, w1, h1 = first
    x2, y2, w2, h2 = second
    return x1 < x2 + w2 + pad and x2 < x1 + w1 + pad and y1 < y2 + h2 + pad and y2 < y1 + h1 + pad


def _segment_meets(start, end, rect) -> bool:
    """Whether the segment from ``start`` to ``end`` touches ``rect`` (Liang-Barsky)."""
    (x0, y0), (x1, y1) = start, end
    left, top, width, height = rect
    low, high = 0.0, 1.0
    for step, room in (
        (x0 - x1, x0 - left),
        (x1 - x0, left + width - x0),
        (y0 - y1, y0 - top),
        (y1 - y0, top + height - y0),
    ):
        if step == 0:
            if room < 0:
                return False
            continue
        t = room / step
        if step < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return False
    return True
