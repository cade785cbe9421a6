"""A batch in the console: the list of batches, one batch's page (its progress, which updates
itself, and its rows, filtered and searched), the progress as JSON for that page, the two
downloads, and the two buttons (retry the failed rows, cancel), through the batch services."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from console.access import WRITE_METHODS, console_view, may, page
from rcm import permissions
from rcm.context import require_org_id
from rcm.errors import ApplicationError, NotFound
from rcm.lookups import JobStatus
from workflows.models import BatchJob, BatchJobItem, ItemStatus
from workflows.selectors import batch as selectors
from workflows.serializers.batch import results_csv_lines
from workflows.services import batch as services

RETRIED = "Sent {rows} failed row{s} back to run again."
CANCELLED = "Batch {job_id} is cancelled: rows not started yet will not run; running rows finish."
BAD_FILTER = "That filter could not be used: {problems}"
# Each bar segment: the job's counter, its name, and its class in batch.css.
BAR_SEGMENTS = (
    ("successful_rows", "successful", "ok"),
    ("failed_rows", "failed", "failed"),
    ("cancelled_rows", "cancelled", "cancelled"),
)


class ItemFilter(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "any status"), *ItemStatus.choices])
    member_id = forms.CharField(required=False, max_length=100, strip=True, label="Member ID")
    patient = forms.CharField(required=False, max_length=200, strip=True, label="Patient name")
    after = forms.IntegerField(required=False, min_value=0)
    before = forms.IntegerField(required=False, min_value=1)


class JobFilter(forms.Form):
    status = forms.ChoiceField(
        required=False, choices=[("", "any status"), *((s, s) for s in JobStatus.ordered())]
    )
    after = forms.IntegerField(required=False, min_value=0)
    before = forms.IntegerField(required=False, min_value=1)


@dataclass(frozen=True)
class ItemRow:
    """One row of a batch as the table shows it."""

    row_number: int
    status: str
    member_id: str
    patient: str
    error: str
    attempts: int
    run_url: str | None
    run_id: int | None


# -- pages ------------------------------------------------------------------------------------


@console_view("batch_job")
def batches(request):
    """The organization's batches, newest first, a page at a time."""
    filters = _valid(request, JobFilter(request.GET))
    listed = selectors.batch_job_page(
        status=filters.get("status") or None,
        after=filters.get("after"),
        before=filters.get("before"),
    )
    return page(
        request,
        "console/batches.html",
        {
            "jobs": [(job, _bar(job)) for job in listed.rows],
            "pages": _page_links(listed, {"status": filters.get("status")}),
            "status": filters.get("status") or "",
            "statuses": JobStatus.ordered(),
            "may_upload": may(request, "batch_job", permissions.ADD),
        },
        title="Batches",
    )


@console_view("batch_job")
def batch(request, job_id: int):
    """One batch: what it runs, its progress (kept current by batch.js) and its rows."""
    job = _job(job_id)
    filters = _valid(request, ItemFilter(request.GET))
    listed = selectors.batch_job_item_page(
        job=job,
        status=filters.get("status") or None,
        member_id=filters.get("member_id") or "",
        patient=filters.get("patient") or "",
        after=filters.get("after"),
        before=filters.get("before"),
    )
    may_run = may(request, "batch_job", permissions.RUN)
    kept = {key: filters.get(key) or "" for key in ("status", "member_id", "patient")}
    return page(
        request,
        "console/batch.html",
        {
            "job": job,
            "bar": _bar(job),
            "progress": selectors.batch_job_progress(job=job),
            "final": job.completed_at is not None,
            "rows": [_item_row(item) for item in listed.rows],
            "pages": _page_links(listed, kept),
            "filters": kept,
            "searched": any(kept.values()),
            "statuses": ItemStatus.values,
            "may_retry": may_run
            and not job.cancel_requested
            and selectors.batch_job_retryable(job=job),
            "may_cancel": may_run and job.completed_at is None,
        },
        title=f"Batch {job.pk}",
    )


@console_view("batch_job")
def batch_progress(request, job_id: int):
    """The batch's counters and speed, for its page to poll (one query)."""
    job = _job(job_id)
    progress = selectors.batch_job_progress(job=job)
    return JsonResponse(
        {
            "status": job.status_id,
            "final": job.completed_at is not None,
            "total": job.total_rows,
            "processed": job.processed_rows,
            "pending": job.pending_rows,
            "running": job.running_rows,
            "successful": job.successful_rows,
            "failed": job.failed_rows,
            "cancelled": job.cancelled_rows,
            "percent": progress.percent_done,
            "rows_per_second": progress.rows_per_second,
            "estimated_completion_at": _iso(progress.estimated_completion_at),
            "started_at": _iso(job.started_at),
            "completed_at": _iso(job.completed_at),
            "bar": {name: width for name, width, _ in _bar(job)},
        }
    )


# -- downloads --------------------------------------------------------------------------------


@console_view("batch_job")
def batch_results(request, job_id: int):
    """The results as the API's results.csv gives them, byte for byte, with the session."""
    job = _job(job_id)
    rows = selectors.batch_job_result_rows(org_id=require_org_id(), job=job)
    return _csv_download(rows, f"batch-{job.pk}-results.csv")


@console_view("batch_job")
def batch_failed_rows(request, job_id: int):
    """The failed rows as they were uploaded, with their errors: fix them, upload them again."""
    job = _job(job_id)
    rows = selectors.batch_job_failed_rows(org_id=require_org_id(), job=job)
    return _csv_download(rows, f"batch-{job.pk}-failed-rows.csv")


def _csv_download(rows, file_name: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        results_csv_lines(rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{file_name}"'
    return response


# -- buttons ----------------------------------------------------------------------------------


@console_view("batch_job", permissions.RUN, methods=WRITE_METHODS)
def batch_retry_failed(request, job_id: int):
    job = _job(job_id)
    try:
        retried = services.batch_job_retry_failed(job=job)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        rows = retried.rows
        messages.success(request, RETRIED.format(rows=rows, s="" if rows == 1 else "s"))
    return redirect("console:batch", job_id=job.pk)


@console_view("batch_job", permissions.RUN, methods=WRITE_METHODS)
def batch_cancel(request, job_id: int):
    job = _job(job_id)
    try:
        services.batch_job_cancel(job=job)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, CANCELLED.format(job_id=job.pk))
    return redirect("console:batch", job_id=job.pk)


# -- helpers ----------------------------------------------------------------------------------


def _job(job_id: int) -> BatchJob:
    """The organization's job; another organization's is not found, like one never made."""
    try:
        return selectors.batch_job_get(job_id=job_id)
    except NotFound:
        raise Http404 from None


def _valid(request, form: forms.Form) -> dict:
    """The filter's values, or none of them (and a message saying why) when one is wrong."""
    if form.is_valid():
        return form.cleaned_data
    problems = " ".join(
        f"{form.fields[name].label or name.title()}: {' '.join(errors)}"
        for name, errors in form.errors.items()
    )
    messages.warning(request, BAD_FILTER.format(problems=problems))
    return {}


def _page_links(listed: selectors.Page, kept: dict) -> dict:
    """The query strings of the previous and next pages, the filters kept."""
    kept = {key: value for key, value in kept.items() if value}
    return {
        "previous": urlencode({**kept, "before": listed.before}) if listed.before else None,
        "next": urlencode({**kept, "after": listed.after}) if listed.after else None,
    }


def _bar(job: BatchJob) -> list[tuple[str, str, str]]:
    """(segment class, width in percent, title) of the job's progress bar, from its counters."""
    total = max(job.total_rows, 1)
    return [
        (css, f"{100 * getattr(job, counter) / total:.2f}", f"{getattr(job, counter)} {name}")
        for counter, name, css in BAR_SEGMENTS
    ]


def _item_row(item: BatchJobItem) -> ItemRow:
    return ItemRow(
        row_number=item.row_number,
        status=item.status,
        member_id=selectors.member_id_of(item),
        patient=selectors.patient_of(item),
        error=selectors.item_error_text(item.error_message),
        attempts=item.attempts,
        run_id=item.run_id,
        run_url=(
            reverse("admin:workflows_workflowrun_change", args=(item.run_id,))
            if item.run_id
            else None
        ),
    )


def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None
