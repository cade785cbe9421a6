"""What every SVG picture drawn on the server writes alike (workflows/drawing/, console's
charts): coordinates short, parts already escaped by ``format_html`` run together, and a
horizontal axis under a plot."""

from collections.abc import Iterable

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString


def number(value: float) -> str:
    """A coordinate with at most one decimal: enough for a pixel, short in the markup."""
    return f"{value:.1f}".removesuffix(".0")


def joined(parts: Iterable[SafeString]) -> SafeString:
    return format_html_join("", "{}", ((part,) for part in parts))


def axis_under(
    css_class: str, *, left: float, right: float, y: float, colour: str, ticks: Iterable[SafeString]
) -> SafeString:
    """A horizontal axis: its line from ``left`` to ``right`` at ``y``, and its ticks."""
    return format_html(
        '<g class="{}"><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>{}</g>',
        css_class,
        left,
        y,
        number(right),
        y,
        colour,
        joined(ticks),
    )
