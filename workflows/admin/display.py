"""What the workflows admins show alike: a refusal with its reasons, a picture in a page, the
links to the revision a job or run ran and to the run a row or trace belongs to."""

from django.contrib import admin
from django.urls import reverse
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


class RevisionLinked:
    """For the admin of a row that ran a revision (``revision_id``, ``revision_number``)."""

    @admin.display(description="revision")
    def revision_link(self, obj):
        url = reverse("admin:workflows_workflowrevision_change", args=(obj.revision_id,))
        return format_html('<a href="{}">Revision {}</a>', url, obj.revision_number)


class RunLinked:
    """For the admin of a row that may belong to a run (``run_id``, None until it has one)."""

    @admin.display(description="run", ordering="run_id")
    def run_link(self, obj):
        if obj.run_id is None:
            return None
        url = reverse("admin:workflows_workflowrun_change", args=(obj.run_id,))
        return format_html('<a href="{}">{}</a>', url, obj.run_id)
