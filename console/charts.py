"""Line charts of a share (0 to 100 %) drawn on the server as SVG: the home's success rates per
day, a micro-state's success curve. Pure: numbers in, markup out; every text goes through
``format_html``, like workflows/drawing/tiers.py, whose palette and proportions these share.

A value of None is a point with nothing to measure (a day without runs): the line breaks
there rather than invent one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import ceil

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from rcm import svg

# Okabe-Ito, told apart with every common colour-vision deficiency; then dashed repeats.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#f0e442", "#000000")
GRID_COLOUR, AXIS_COLOUR = "#e0e0e0", "#555555"
PLOT_HEIGHT, MIN_PLOT_WIDTH = 180, 560
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 34
LEGEND_ROW, LEGEND_CHAR = 18, 6.5  # a legend line's height; a character's width in it
MIN_LABEL_GAP = 70  # pixels between two labels of the x axis


@dataclass(frozen=True)
class Line:
    name: str
    values: Sequence[float | None]  # shares, 0 to 1, one per x position


def colour_of(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def dashed(index: int) -> bool:
    """Past the palette's eight colours, lines repeat them dashed."""
    return index >= len(PALETTE)


def share_chart_svg(
    *, x_labels: Sequence[str], lines: Sequence[Line], label: str, dots: bool = True
) -> SafeString:
    """``lines`` over ``x_labels`` (one label per position; as many are printed as fit), the
    share on the left axis, a legend below."""
    positions = len(x_labels)
    plot_width = max(MIN_PLOT_WIDTH, 24 * positions)
    slot = plot_width / max(positions, 1)
    legend = _legend(lines, LEFT, TOP + PLOT_HEIGHT + BOTTOM, plot_width)
    height = TOP + PLOT_HEIGHT + BOTTOM + legend[1]
    width = LEFT + plot_width + RIGHT
    parts = [_share_axis(plot_width), _x_axis(x_labels, slot)]
    parts += [_line(index, line, slot, dots) for index, line in enumerate(lines)]
    parts.append(legend[0])
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="share-chart" width="{}" height="{}" '
        'viewBox="0 0 {} {}" role="img" aria-label="{}" font-family="sans-serif" '
        'font-size="11">'
        # A background of its own: the admin's dark theme would hide the dark texts.
        '<rect width="100%" height="100%" fill="#ffffff"/>{}</svg>',
        svg.number(width),
        svg.number(height),
        svg.number(width),
        svg.number(height),
        label,
        svg.joined(parts),
    )


def _y(share: float) -> float:
    return TOP + PLOT_HEIGHT * (1 - share)


def _share_axis(plot_width: float) -> SafeString:
    ticks = []
    for share in (0, 0.25, 0.5, 0.75, 1):
        y = svg.number(_y(share))
        ticks.append(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>'
                '<text x="{}" y="{}" text-anchor="end" fill="{}">{}</text>',
                LEFT,
                y,
                svg.number(LEFT + plot_width),
                y,
                GRID_COLOUR,
                LEFT - 6,
                svg.number(_y(share) + 4),
                AXIS_COLOUR,
                f"{share:.0%}",
            )
        )
    return format_html('<g class="share-axis">{}</g>', svg.joined(ticks))


def _x_axis(x_labels: Sequence[str], slot: float) -> SafeString:
    """Labels under their positions, as many as fit; the last always. Where positions are
    narrower than a label, the first and the last are held inside the plot."""
    step = max(1, ceil(MIN_LABEL_GAP / slot))
    bottom, last = TOP + PLOT_HEIGHT, len(x_labels) - 1
    ticks = []
    for index, text in enumerate(x_labels):
        if not text or (index % step and index != last):
            continue
        x, anchor = LEFT + (index + 0.5) * slot, "middle"
        if slot < MIN_LABEL_GAP and index in (0, last):
            x, anchor = (LEFT, "start") if index == 0 else (LEFT + len(x_labels) * slot, "end")
        ticks.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="{}" fill="{}">{}</text>',
                svg.number(x),
                bottom + 16,
                anchor,
                AXIS_COLOUR,
                text,
            )
        )
    return svg.axis_under(
        "x-axis",
        left=LEFT,
        right=LEFT + len(x_labels) * slot,
        y=bottom,
        colour=AXIS_COLOUR,
        ticks=ticks,
    )


def _line(index: int, line: Line, slot: float, dots: bool) -> SafeString:
    """The known values as dots, joined across neighbours only."""
    runs: list[list[tuple[str, str]]] = [[]]
    for position, value in enumerate(line.values):
        if value is None:
            runs.append([])
            continue
        runs[-1].append((svg.number(LEFT + (position + 0.5) * slot), svg.number(_y(value))))
    colour = colour_of(index)
    dash = ' stroke-dasharray="5 3"' if dashed(index) else ""
    polylines = format_html_join(
        "",
        '<polyline points="{}" fill="none" stroke-width="2"{}/>',
        ((" ".join(f"{x},{y}" for x, y in run), SafeString(dash)) for run in runs if len(run) > 1),
    )
    points = [point for run in runs for point in run] if dots else []
    circles = format_html_join("", '<circle cx="{}" cy="{}" r="3"/>', points)
    return format_html(
        '<g class="line" data-name="{}" stroke="{}" fill="{}"><title>{}</title>{}{}</g>',
        line.name,
        colour,
        colour,
        line.name,
        polylines,
        circles,
    )


def _legend(lines: Sequence[Line], left: float, top: float, width: float):
    """(markup, height): entries left to right, wrapping to a new row at the plot's width."""
    entries, x, y = [], left, top
    for index, line in enumerate(lines):
        entry_width = 22 + ceil(len(line.name) * LEGEND_CHAR) + 16
        if x > left and x + entry_width > left + width:
            x, y = left, y + LEGEND_ROW
        dash = ' stroke-dasharray="5 3"' if dashed(index) else ""
        entries.append(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2"{}/>'
                '<text x="{}" y="{}" fill="#222222">{}</text>',
                svg.number(x),
                svg.number(y + 5),
                svg.number(x + 16),
                svg.number(y + 5),
                colour_of(index),
                SafeString(dash),
                svg.number(x + 22),
                svg.number(y + 9),
                line.name,
            )
        )
        x += entry_width
    height = (y - top) + LEGEND_ROW if lines else 0
    return format_html('<g class="legend">{}</g>', svg.joined(entries)), height
