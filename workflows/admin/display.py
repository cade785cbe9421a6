"""What the workflows admins show alike: a refusal with its reasons, a picture in a page, the
links to the revision a job or run ran and to the run a row or trace belongs to, and an action
taken on each selected row."""

from django.contrib import admin, messages
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


def rows_act(model_admin, request, rows, act, refused, level=messages.WARNING) -> int:
    """``act(row)`` on each row on its own, so that one refusal does not undo the others: how
    many it went through for. A row whose service refuses is a message at ``level``, the text
    ``refused(row, error)``."""
    done = 0
    for row in rows:
        try:
            act(row)
        except ApplicationError as error:
            model_admin.message_user(request, refused(row, error), level)
        else:
            done += 1
    return done


def refusal_by_pk(label: str):
    """A refusal naming the row by its id: the job or run finished, or has nothing to retry,
    in the meantime."""
    return lambda row, error: f"{label} {row.pk}: {error.message}"


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
