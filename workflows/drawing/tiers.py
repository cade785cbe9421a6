"""A workflow's tier mix over time as an SVG picture, for the admin and the console: a stacked
bar per time bucket (tier 1, 2, 3 and unresolved actions, counted on the left axis) and the
share of tier 1 as a line (on the right axis), so that a portal's drift shows as the line
falling and the repairs rising, and the healing as the line coming back.

Pure: buckets (workflows/selectors/traces.py) in, SVG markup out, nothing read from the
database. Times are drawn in the current time zone (the server's). Every text goes through
``format_html``, like workflows/drawing/graph.py.
"""

from __future__ import annotations

from datetime import time, timedelta
from itertools import count
from math import ceil

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from rcm import svg
from workflows.selectors.traces import TierBucket

# Okabe-Ito colours, told apart with every common colour-vision deficiency.
TIERS = (
    ("tier_1", "tier 1 memory", "#009e73"),  # bluish green
    ("tier_2", "tier 2 page scored", "#e69f00"),  # orange
    ("tier_3", "tier 3 model", "#0072b2"),  # blue
    ("unresolved", "unresolved", "#d55e00"),  # vermilion
)
SHARE_COLOUR, SHARE_NAME = "#222222", "tier 1 share"
GRID_COLOUR, AXIS_COLOUR = "#e0e0e0", "#555555"

PLOT_HEIGHT, MIN_PLOT_WIDTH, MIN_SLOT = 180, 560, 20
LEFT, RIGHT, TOP, BOTTOM = 48, 48, 40, 34  # room for the axes' labels and the legend
LABEL_WIDTH = 80  # "12 May 18:00" at the font size below, and a gap
LEGEND_CHAR = 6.0  # the width of a character of the legend, to place the next entry


def tier_mix_svg(buckets: list[TierBucket]) -> SafeString:
    """The buckets (at least one) left to right, oldest first."""
    slot = max(MIN_SLOT, MIN_PLOT_WIDTH / len(buckets))
    plot_width = slot * len(buckets)
    ticks = _count_ticks(max(bucket.total for bucket in buckets))
    scale = PLOT_HEIGHT / ticks[-1]
    parts = [_count_axis(ticks, scale, plot_width), _share_axis(plot_width)]
    parts += [_time_axis(buckets, slot)]
    parts += [
        _bar(bucket, LEFT + index * slot, slot, scale) for index, bucket in enumerate(buckets)
    ]
    # The line last, over the bars: a falling share stays visible across tall ones.
    parts += [_share_line(buckets, slot), _legend()]
    width, height = svg.number(LEFT + plot_width + RIGHT), TOP + PLOT_HEIGHT + BOTTOM
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" '
        'role="img" aria-label="tier mix over time" font-family="sans-serif" font-size="11">'
        # A background of its own: the admin's dark theme would hide the black texts.
        '<rect width="100%" height="100%" fill="#ffffff"/>{}</svg>',
        width,
        height,
        width,
        height,
        svg.joined(parts),
    )


def _count_ticks(highest: int) -> list[int]:
    """0 up to at least ``highest`` in steps of 1, 2 or 5 times a power of ten, at most five
    steps: round numbers that a reader adds up at a glance."""
    for step in (base * 10**power for power in count() for base in (1, 2, 5)):
        if step * 5 >= highest:
            break
    return list(range(0, step * max(ceil(highest / step), 1) + 1, step))


def _count_axis(ticks: list[int], scale: float, plot_width: float) -> SafeString:
    """A grid line and its count at each tick, on the left."""
    lines = []
    for tick in ticks:
        y = TOP + PLOT_HEIGHT - tick * scale
        lines.append(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>'
                '<text x="{}" y="{}" text-anchor="end" fill="{}">{}</text>',
                LEFT,
                svg.number(y),
                svg.number(LEFT + plot_width),
                svg.number(y),
                GRID_COLOUR,
                LEFT - 6,
                svg.number(y + 4),
                AXIS_COLOUR,
                tick,
            )
        )
    middle = TOP + PLOT_HEIGHT // 2
    return format_html(
        '<g class="count-axis">{}<text x="12" y="{}" text-anchor="middle" fill="{}" '
        'transform="rotate(-90 12 {})">actions</text></g>',
        svg.joined(lines),
        middle,
        AXIS_COLOUR,
        middle,
    )


def _share_axis(plot_width: float) -> SafeString:
    """0%, 50% and 100% of tier 1, on the right."""
    x = svg.number(LEFT + plot_width + 6)
    labels = (
        (x, svg.number(TOP + PLOT_HEIGHT * (1 - share) + 4), f"{share:.0%}")
        for share in (0, 0.5, 1)
    )
    return format_html(
        '<g class="share-axis" fill="{}">{}</g>',
        SHARE_COLOUR,
        format_html_join("", '<text x="{}" y="{}">{}</text>', labels),
    )


def _time_axis(buckets: list[TierBucket], slot: float) -> SafeString:
    """A tick and a label every few buckets, as many as fit; with buckets shorter than a day
    that divide it, on the days' first buckets, so that a label names the day it starts."""
    width = buckets[0].end - buckets[0].start
    step = ceil(LABEL_WIDTH / slot)
    per_day = timedelta(days=1) / width
    if width < timedelta(days=1) and per_day.is_integer():
        step = int(per_day) * ceil(step / per_day)
    starts = [timezone.localtime(bucket.start) for bucket in buckets[::step]]
    shape = "%a %d %b" if all(start.time() == time.min for start in starts) else "%d %b %H:%M"
    bottom = TOP + PLOT_HEIGHT
    ticks = []
    for index, start in enumerate(starts):
        x = svg.number(LEFT + index * step * slot)
        ticks.append(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>'
                '<text x="{}" y="{}" dx="3" fill="{}">{}</text>',
                x,
                TOP,
                x,
                bottom + 4,
                GRID_COLOUR,
                x,
                bottom + 16,
                AXIS_COLOUR,
                start.strftime(shape),
            )
        )
    return svg.axis_under(
        "time-axis",
        left=LEFT,
        right=LEFT + len(buckets) * slot,
        y=bottom,
        colour=AXIS_COLOUR,
        ticks=ticks,
    )


def _bar(bucket: TierBucket, left: float, slot: float, scale: float) -> SafeString:
    """One bucket: its tiers stacked from the bottom, and its numbers in a tooltip."""
    x, bar_width = svg.number(left + slot * 0.15), svg.number(slot * 0.7)
    segments, y = [], TOP + PLOT_HEIGHT
    for field, _, colour in TIERS:
        height = getattr(bucket, field) * scale
        if height:
            y -= height
            segments.append((x, svg.number(y), bar_width, svg.number(height), colour))
    return format_html(
        '<g class="bucket" data-start="{}" data-tier-1="{}" data-tier-2="{}" data-tier-3="{}" '
        'data-unresolved="{}"><title>{}</title>{}</g>',
        bucket.start.isoformat(),
        bucket.tier_1,
        bucket.tier_2,
        bucket.tier_3,
        bucket.unresolved,
        _describe(bucket),
        format_html_join("", '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>', segments),
    )


def _describe(bucket: TierBucket) -> str:
    start, end = timezone.localtime(bucket.start), timezone.localtime(bucket.end)
    counts = ", ".join(f"{getattr(bucket, field)} {name}" for field, name, _ in TIERS)
    share = "" if bucket.tier_1_share is None else f" ({bucket.tier_1_share:.0%} tier 1)"
    return f"{start:%a %d %b %H:%M} to {end:%a %d %b %H:%M}: {counts}{share}"


def _share_line(buckets: list[TierBucket], slot: float) -> SafeString:
    """The share of tier 1 in each bucket that has actions, a dot each, joined across
    neighbours only: a bucket without actions breaks the line rather than invent a value."""
    points: list[list[tuple[str, str]]] = [[]]
    for index, bucket in enumerate(buckets):
        if bucket.tier_1_share is None:
            points.append([])
            continue
        y = TOP + PLOT_HEIGHT * (1 - bucket.tier_1_share)
        points[-1].append((svg.number(LEFT + (index + 0.5) * slot), svg.number(y)))
    runs = [run for run in points if len(run) > 1]
    dots = [point for run in points for point in run]
    return format_html(
        '<g class="share" stroke="{}" fill="{}">{}{}</g>',
        SHARE_COLOUR,
        SHARE_COLOUR,
        format_html_join(
            "",
            '<polyline points="{}" fill="none" stroke-width="1.5"/>',
            ((" ".join(f"{x},{y}" for x, y in run),) for run in runs),
        ),
        format_html_join("", '<circle cx="{}" cy="{}" r="2.5" stroke="#ffffff"/>', dots),
    )


def _legend() -> SafeString:
    entries, x = [], LEFT
    for _, name, colour in TIERS:
        entries.append(
            format_html(
                '<rect x="{}" y="{}" width="12" height="12" fill="{}"/>'
                '<text x="{}" y="{}">{}</text>',
                x,
                12,
                colour,
                x + 16,
                22,
                name,
            )
        )
        x += 16 + ceil(len(name) * LEGEND_CHAR) + 14
    entries.append(
        format_html(
            '<line x1="{}" y1="18" x2="{}" y2="18" stroke="{}" stroke-width="1.5"/>'
            '<circle cx="{}" cy="18" r="2.5" fill="{}" stroke="#ffffff"/>'
            '<text x="{}" y="22">{} (right axis)</text>',
            x,
            x + 16,
            SHARE_COLOUR,
            x + 8,
            SHARE_COLOUR,
            x + 20,
            SHARE_NAME,
        )
    )
    return format_html('<g class="legend">{}</g>', svg.joined(entries))
