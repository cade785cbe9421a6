"""What the workflows admins show alike: a refusal with its reasons, a picture in a page, the
link to the revision a job or run ran, and an action taken on each selected row."""

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


def rows_act(model_admin, request, rows, act, label: str) -> int:
    """``act(row)`` on each row, counting those it went through for. A row whose service
    refuses (it finished, or has nothing to retry, in the meantime) is a warning naming it."""
    done = 0
    for row in rows:
        try:
            act(row)
        except ApplicationError as error:
            model_admin.message_user(
                request, f"{label} {row.pk}: {error.message}", messages.WARNING
            )
        else:
            done += 1
    return done


def picture(svg, caption: str = ""):
    return format_html('<div style="overflow-x: auto">{}{}</div>', caption, svg)


class RevisionLinked:
    """For the admin of a row that ran a revision (``revision_id``, ``revision_number``)."""

    @admin.display(description="revision")
    def revision_link(self, obj):
        url = reverse("admin:workflows_workflowrevision_change", args=(obj.revision_id,))
        return format_html('<a href="{}">Revision {}</a>', url, obj.revision_number)
