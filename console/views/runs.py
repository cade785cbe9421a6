"""A run's buttons on its page (the admin's run page shows them; they post here)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.html import format_html

from console import links
from console.access import WRITE_METHODS, console_view
from rcm import permissions
from rcm.errors import ApplicationError
from workflows.selectors import runs as run_selectors
from workflows.services import runs as run_services


@console_view("run", permissions.RUN, methods=WRITE_METHODS)
def run_rerun(request, run_id: int):
    """The same input again on the run's own revision, through the service the API's rerun
    uses; the message links the new run, whose page it opens."""
    run = run_selectors.run_list().filter(pk=run_id).first()
    if run is None:
        raise Http404("No such run in this organization.")
    try:
        new = run_services.run_rerun(run=run, created_by=request.user)
    except ApplicationError as error:
        messages.error(request, f"Run {run.pk} was not run again: {error.message}")
        return redirect(links.run_url(run.pk))
    messages.success(
        request,
        format_html(
            'Started <a href="{}">run {}</a> with the input of run {}.',
            links.run_url(new.pk),
            new.pk,
            run.pk,
        ),
    )
    return redirect(links.run_url(new.pk))
