"""Reads of batch jobs: lists, progress, items and the results table.

All of them go through the tenant-scoped managers: call them inside an organization context
(the results table sets it itself, chunk by chunk; see ``batch_job_result_rows``).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import CharField, F, Func, QuerySet

from rcm.context import org_context
from rcm.db.filters import filter_given
from rcm.errors import NotFound
from workflows.engine import clock
from workflows.engine.graph import Graph
from workflows.models import BatchJob, BatchJobItem, Workflow

NOT_FOUND = "Not found."
RESULT_CHUNK = 2000
# The results table's own columns; input or output keys of the same name get a prefix.
RESULT_FIXED = ("row_number", "status", "error")


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


@dataclass(frozen=True)
class Progress:
    """How far a job is: share of rows processed, speed since it started, time to go."""

    percent_done: float
    rows_per_second: float | None
    eta_seconds: int | None
    estimated_completion_at: datetime | None


def batch_job_progress(*, job: BatchJob, now: datetime | None = None) -> Progress:
    """From the job's counters alone (no query). Speed is processed rows over the time since
    the first row started (or until the job ended); no speed before any row has started."""
    now = now or clock.now()
    percent = 100.0 if not job.total_rows else round(100 * job.processed_rows / job.total_rows, 1)
    if job.completed_at is not None:
        rate = _rate(job.processed_rows, job.started_at, job.completed_at)
        return Progress(percent, rate, 0, job.completed_at)
    rate = _rate(job.processed_rows, job.started_at, now)
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
    inputs = _distinct_keys(job, "input_data")
    required = Graph.from_snapshot(job.revision.graph).required_data
    first = [name for name in required if name in inputs]
    return first + sorted(inputs - set(first)), sorted(_distinct_keys(job, "output_data"))


def _distinct_keys(job: BatchJob, field: str) -> set[str]:
    keys = (
        BatchJobItem.objects.filter(batch_job=job, **{f"{field}__isnull": False})
        .annotate(key=Func(F(field), function="jsonb_object_keys", output_field=CharField()))
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
    """The results table, header first, for a streamed response.

    Streaming runs after the view has returned and the request's organization context is
    gone, so each chunk is read in its own ``org_context``, entered and left within one step
    of the generator (a context held across ``yield`` would belong to whoever resumes it).
    Chunks follow the (batch_job, row_number) index by keyset, each its own short statement:
    no transaction or server-side cursor stays open while a slow client reads.
    """
    with org_context(org_id):
        inputs, outputs = batch_job_result_columns(job=job)
    yield batch_job_result_header(inputs, outputs)
    last = 0
    while True:
        with org_context(org_id):
            chunk = list(
                BatchJobItem.objects.filter(batch_job_id=job.pk, row_number__gt=last)
                .order_by("row_number")
                .values_list("row_number", "input_data", "output_data", "status", "error_message")[
                    :RESULT_CHUNK
                ]
            )
        if not chunk:
            return
        for row_number, input_data, output_data, status, error in chunk:
            output_data = output_data or {}
            yield [
                row_number,
                *(input_data.get(key) for key in inputs),
                *(output_data.get(key) for key in outputs),
                status,
                error,
            ]
        last = chunk[-1][0]
