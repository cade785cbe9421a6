"""What the workflows admins show alike: a refusal with its reasons, and a picture in a page."""

from django.utils.html import format_html

from rcm.errors import ApplicationError


def error_text(error: ApplicationError) -> str:
    """A refusal with its reasons: the problems of a graph, or the errors of each field."""
    details = error.details
    if "problems" in details:
        reasons = [f"{p['node'] or 'graph'}: {p['message']}" for p in details["problems"]]
    else:
        reasons = [
            f"{name}: {' '.join(texts)}"
            for name, texts in details.items()
            if isinstance(texts, list) and all(isinstance(text, str) for text in texts)
        ]
    return f"{error.message} {'; '.join(reasons)}" if reasons else error.message


def picture(svg, caption: str = ""):
    return format_html('<div style="overflow-x: auto">{}{}</div>', caption, svg)
