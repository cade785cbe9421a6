"""What every SVG picture drawn on the server writes alike (workflows/drawing/, console's
charts): coordinates short, and parts already escaped by ``format_html`` run together."""

from collections.abc import Iterable

from django.utils.html import format_html_join
from django.utils.safestring import SafeString


def number(value: float) -> str:
    """A coordinate with at most one decimal: enough for a pixel, short in the markup."""
    return f"{value:.1f}".removesuffix(".0")


def joined(parts: Iterable[SafeString]) -> SafeString:
    return format_html_join("", "{}", ((part,) for part in parts))
