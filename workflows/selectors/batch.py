"""Reads of batch jobs: lists, progress, items (filtered, searched, a page at a time) and the
results and failed-rows tables.

All of them go through the tenant-scoped managers: call them inside an organization context
(the results table sets it itself, chunk by chunk; see ``batch_job_result_rows``).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import CharField, F, Func, Q, QuerySet

from rcm import clock
from rcm.context import org_context
from rcm.db.filters import filter_given
from rcm.errors import NotFound
from workflows.engine.graph import Graph
from workflows.models import BatchJob, BatchJobItem, ItemStatus, Workflow
from workflows.models.batch import FIRST_NAME_FIELD, LAST_NAME_FIELD, MEMBER_ID_FIELD

NOT_FOUND = "Not found."
RESULT_CHUNK = 2000
# Above every character: "starts with w12" is the range ["w12", "w12" + this).
LAST_CHARACTER = "\U0010ffff"
# The results table's own columns; input or output keys of the same name get a prefix.
RESULT_FIXED = ("row_number", "status", "error")
# Columns a failed-rows file adds after the row's own (RESULT_FIXED names them too).
FAILED_ROW_EXTRA = ("row_number", "error")
ITEM_PAGE_SIZE = 50
JOB_PAGE_SIZE = 25
# A failed row's error as the engine and the services record it -> as a person says it.
ERROR_WORDS = {
    "failure": "The workflow ended at a failure outcome.",
    "cancelled": "Cancelled before it started.",
    "cancelled on request": "Cancelled while it ran.",
    "the run timed out": "The run did not finish in time.",
    "no outcome reached": "The run ended without reaching an outcome.",
}


def batch_workflow_get(*, workflow_id: uuid.UUID) -> Workflow:
    """The organization's workflow (another organization's is not found, like a new id)."""
    workflow = Workflow.objects.filter(pk=workflow_id).first()
    if workflow is None:
        raise NotFound("not_found", NOT_FOUND)
    return workflow


def batch_job_list(*, workflow_id=None, status: str | None = None, since=None, until=None):
    return filter_given(
        BatchJob.objects.all(),
        workflow_id=workflow_id,
        status_id=status,
        created_at__gte=since,
        created_at__lt=until,
    )


def batch_job_item_list(*, job: BatchJob, status: str | None = None) -> QuerySet[BatchJobItem]:
    items = BatchJobItem.objects.filter(batch_job=job)
    return items.filter(status=status) if status else items


def retryable_items(*, job: BatchJob) -> QuerySet[BatchJobItem]:
    """The job's rows a retry sends back: those that failed in a run. Rows that failed the
    upload's own check (never attempted) would fail the same way."""
    return BatchJobItem.objects.filter(batch_job=job, status=ItemStatus.FAILED, attempts__gt=0)


def batch_job_retryable(*, job: BatchJob) -> bool:
    """Whether a retry would send any row back (one query, on the failed rows' index)."""
    return job.failed_rows > 0 and retryable_items(job=job).exists()


def batch_job_get(*, job_id: int) -> BatchJob:
    """The organization's job with its workflow (another organization's is not found)."""
    job = BatchJob.objects.select_related("workflow").filter(pk=job_id).first()
    if job is None:
        raise NotFound("not_found", NOT_FOUND)
    return job


@dataclass(frozen=True)
class Page:
    """One page of a keyset-paginated list: its rows, and the keys to ask for the next and
    the previous page with (None: there is none)."""

    rows: list
    after: int | None
    before: int | None


def batch_job_page(
    *, status: str | None = None, before: int | None = None, after: int | None = None
) -> Page:
    """The organization's jobs, newest first, ``JOB_PAGE_SIZE`` at a time by id (ids grow as
    jobs are created), each with its workflow."""
    jobs = BatchJob.objects.select_related("workflow").defer("workflow__description")
    if status:
        jobs = jobs.filter(status_id=status)
    return _keyset_page(
        jobs, key="id", newest_first=True, before=before, after=after, size=JOB_PAGE_SIZE
    )


def member_id_of(item: BatchJobItem) -> str:
    return str((item.input_data or {}).get(MEMBER_ID_FIELD) or "")


def patient_of(item: BatchJobItem) -> str:
    data = item.input_data or {}
    names = (data.get(FIRST_NAME_FIELD), data.get(LAST_NAME_FIELD))
    return " ".join(str(name) for name in names if name not in (None, ""))


def item_error_text(error: str) -> str:
    """A row's error in words: the engine's short codes spelled out, others as they are."""
    return ERROR_WORDS.get(error, error)


def batch_job_item_search(
    *, job: BatchJob, status: str | None = None, member_id: str = "", patient: str = ""
) -> QuerySet[BatchJobItem]:
    """The job's rows of ``status`` whose member ID starts with ``member_id`` and whose first
    or last name starts with each word of ``patient``, ignoring case.

    "Starts with" is a range of a stored lower-case key in byte order, which its index within
    the job serves (BatchJobItem's Meta says why not LIKE nor an expression index: row-level
    security keeps those off the indexes), so that a search costs the rows it finds, not the
    job's size."""
    items = BatchJobItem.objects.filter(batch_job=job).defer("output_data")
    if status:
        items = items.filter(status=status)
    if member_id.strip():
        items = items.filter(_starts_with("member_id_key", member_id.strip()))
    for word in patient.split():
        items = items.filter(
            _starts_with("first_name_key", word) | _starts_with("last_name_key", word)
        )
    return items


def _starts_with(key: str, text: str) -> Q:
    start = text.lower()
    return Q(**{f"{key}__gte": start, f"{key}__lt": start + LAST_CHARACTER})


def batch_job_item_page(
    *,
    job: BatchJob,
    status: str | None = None,
    member_id: str = "",
    patient: str = "",
    after: int | None = None,
    before: int | None = None,
) -> Page:
    """One page of the job's rows (``batch_job_item_search``) in file order,
    ``ITEM_PAGE_SIZE`` at a time by row number."""
    items = batch_job_item_search(job=job, status=status, member_id=member_id, patient=patient)
    return _keyset_page(items, key="row_number", before=before, after=after, size=ITEM_PAGE_SIZE)


def _keyset_page(
    rows: QuerySet,
    *,
    key: str,
    size: int,
    before: int | None,
    after: int | None,
    newest_first: bool = False,
) -> Page:
    """``size`` rows past ``after`` (or up to ``before``) in the order of ``key``, read with
    one query of ``size + 1`` rows: the extra one says whether another page follows. The key
    is a column an index orders, so a page deep into 100,000 rows costs what the first does."""
    forward = f"-{key}" if newest_first else key
    backward = key if newest_first else f"-{key}"
    onward, back = ("lt", "gt") if newest_first else ("gt", "lt")
    if before is not None:
        found = list(rows.filter(**{f"{key}__{back}": before}).order_by(backward)[: size + 1])
        more_back = len(found) > size
        page = found[:size][::-1]
        return Page(
            rows=page,
            after=getattr(page[-1], key) if page else None,
            before=getattr(page[0], key) if page and more_back else None,
        )
    if after is not None:
        rows = rows.filter(**{f"{key}__{onward}": after})
    found = list(rows.order_by(forward)[: size + 1])
    page = found[:size]
    return Page(
        rows=page,
        after=getattr(page[-1], key) if len(found) > size else None,
        before=getattr(page[0], key) if page and after is not None else None,
    )


@dataclass(frozen=True)
class Progress:
    """How far a job is: share of rows processed, speed since it started, time to go."""

    percent_done: float
    rows_per_second: float | None
    eta_seconds: int | None
    estimated_completion_at: datetime | None


def batch_job_progress(*, job: BatchJob, now: datetime | None = None) -> Progress:
    """From the job's counters alone (no query). Speed is the rows processed since the first
    feed (after the last retry, if any) over the time since then (or until the job ended):
    rows refused at upload are not speed, nor is the idle time before a retry; no speed
    before any row has started."""
    now = now or clock.now()
    percent = 100.0 if not job.total_rows else round(100 * job.processed_rows / job.total_rows, 1)
    if job.completed_at is not None:
        rate = _rate(job.processed_rows - job.speed_base_rows, job.speed_since, job.completed_at)
        return Progress(percent, rate, 0, job.completed_at)
    rate = _rate(job.processed_rows - job.speed_base_rows, job.speed_since, now)
    if not rate:
        return Progress(percent, rate, None, None)
    eta = math.ceil((job.pending_rows + job.running_rows) / rate)
    return Progress(percent, rate, eta, now + timedelta(seconds=eta))


def _rate(processed: int, started_at: datetime | None, until: datetime) -> float | None:
    if started_at is None:
        return None
    elapsed = (until - started_at).total_seconds()
    return round(processed / elapsed, 3) if elapsed > 0 else None


# -- results --------------------------------------------------------------------------------


def batch_job_result_columns(*, job: BatchJob) -> tuple[list[str], list[str]]:
    """(input keys, output keys) of the results table, in a fixed order.

    jsonb keeps no key order, so the upload's column order is gone. The order is therefore:
    the workflow's ``required_data`` in its order, then every other input key of the job's
    rows alphabetically; outputs alphabetically. The key sets come from PostgreSQL (one
    DISTINCT query each), not from reading every row here.
    """
    return _input_columns(job), sorted(_distinct_keys(job, "output_data"))


def _input_columns(job: BatchJob, *, status: str | None = None) -> list[str]:
    inputs = _distinct_keys(job, "input_data", status=status)
    required = Graph.from_snapshot(job.revision.graph).required_data
    first = [name for name in required if name in inputs]
    return first + sorted(inputs - set(first))


def _distinct_keys(job: BatchJob, field: str, *, status: str | None = None) -> set[str]:
    items = batch_job_item_list(job=job, status=status).filter(**{f"{field}__isnull": False})
    keys = (
        items.annotate(key=Func(F(field), function="jsonb_object_keys", output_field=CharField()))
        .values_list("key", flat=True)
        .distinct()
        .order_by()
    )
    return set(keys)


def batch_job_result_header(inputs: list[str], outputs: list[str]) -> list[str]:
    """Column titles: row_number, inputs, outputs, status, error; a key that would repeat a
    title before it is prefixed (``input.status``, ``output.member_id``)."""
    taken = set(RESULT_FIXED)
    titles = ["row_number"]
    for prefix, keys in (("input.", inputs), ("output.", outputs)):
        for key in keys:
            title = prefix + key if key in taken else key
            taken.add(key)
            titles.append(title)
    return [*titles, "status", "error"]


def batch_job_result_rows(*, org_id: uuid.UUID, job: BatchJob) -> Iterator[list]:
    """The results table, header first, for a streamed response (see ``_item_rows``)."""
    with org_context(org_id):
        inputs, outputs = batch_job_result_columns(job=job)
    yield batch_job_result_header(inputs, outputs)
    fields = ("row_number", "input_data", "output_data", "status", "error_message")
    for row_number, input_data, output_data, status, error in _item_rows(org_id, job, fields):
        output_data = output_data or {}
        yield [
            row_number,
            *(input_data.get(key) for key in inputs),
            *(output_data.get(key) for key in outputs),
            status,
            error,
        ]


def batch_job_failed_rows(*, org_id: uuid.UUID, job: BatchJob) -> Iterator[list]:
    """The job's failed rows as they were uploaded, header first: the input columns (as the
    results order them), then the row's number in the file and its error in words, so that
    the file can be fixed and uploaded again (the console's mapping leaves those two out)."""
    with org_context(org_id):
        inputs = _input_columns(job, status=ItemStatus.FAILED)
    yield [*inputs, *FAILED_ROW_EXTRA]
    fields = ("row_number", "input_data", "error_message")
    for row_number, input_data, error in _item_rows(org_id, job, fields, ItemStatus.FAILED):
        yield [*(input_data.get(key) for key in inputs), row_number, item_error_text(error)]


def _item_rows(
    org_id: uuid.UUID, job: BatchJob, fields: tuple[str, ...], status: str | None = None
) -> Iterator[tuple]:
    """``fields`` of the job's rows (of one status) in row order, read ``RESULT_CHUNK`` at a
    time.

    Streaming runs after the view has returned and the request's organization context is
    gone, so each chunk is read in its own ``org_context``, entered and left within one step
    of the generator (a context held across ``yield`` would belong to whoever resumes it).
    Chunks follow the (batch_job, row_number) index by keyset (with the status: the
    (batch_job, status, row_number) one), each its own short statement: no transaction or
    server-side cursor stays open while a slow client reads.
    """
    last = 0
    while True:
        with org_context(org_id):
            chunk = list(
                batch_job_item_list(job=job, status=status)
                .filter(row_number__gt=last)
                .order_by("row_number")
                .values_list(*fields)[:RESULT_CHUNK]
            )
        if not chunk:
            return
        yield from chunk
        last = chunk[-1][0]
