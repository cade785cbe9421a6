"""Batch jobs that already ran elsewhere: finished rows with their results and traces, written
as history (seeded demo and benchmark data, or work imported from a legacy system).

The platform's own jobs finish through the engine: rows become runs, runs settle their rows
one by one (workflows/services/batch.py). Work that already happened has nothing left to run,
so ``batch_job_record_history`` writes the job as it ended: every row in its final status
with its output, error and time, its traces, and the job's counters and status computed from
those rows, all in one transaction. Rows need no run: ``batch_job_item.run`` and the traces'
``run`` and ``node_run`` may be empty, as they are for rows refused at upload.

Rows and traces are written in chunks through ``rcm.db.bulk.rows_copy`` (COPY into a
temporary table, then one INSERT): a seed or an import brings hundreds of thousands of rows
and millions of traces, where ``bulk_create`` was measured five times slower and would put
the current time in ``created_at`` instead of the history's own.

Patient data is masked as the engine masks it (DESIGN §5): a trace's detail, error, tier
reason and model exchange, and a row's error, lose the row's own input values (declared
literals) and whatever has a patient-data shape before they are stored. A trace's row is the
engine's own (workflows/engine/traces.py trace_row), so it is masked and cut the same way.
The row's input and output are kept as given: that is where a row's values belong.
"""

from __future__ import annotations

import datetime as dt
import itertools
import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NoReturn

from django.db import transaction

from rcm import clock
from rcm.db.bulk import ids_allocate, rows_copy
from rcm.errors import ApplicationError
from workflows.engine.traces import (
    MAX_ACTION_TYPE,
    MAX_NODE_KEY,
    TRACE_COLUMNS,
    trace_masker,
    trace_row,
)
from workflows.models import (
    BatchJob,
    BatchJobItem,
    ItemStatus,
    Workflow,
    WorkflowRevision,
    WorkflowTrace,
    WorkflowTraceEndpoint,
)
from workflows.models.batch import ITEM_TERMINAL
from workflows.services.batch import job_final_status, job_row_create
from workflows.services.traces import step_trace_fields

# Rows written per COPY: large enough that the fixed cost of a round trip is shared, small
# enough that one chunk's rows and traces stay a few megabytes in memory.
CHUNK = 5000

NO_ROWS = "A batch job needs at least one row."
WRONG_REVISION = "The revision is not one of this workflow's."
NOT_FINISHED = "Row {row}: status {status!r} is not a final one ({statuses})."
BAD_ROW_NUMBER = "Row {row}: row numbers start at 1."
DUPLICATE_ROW = "Row {row} appears twice."
BAD_ATTEMPTS = "Row {row}: attempts cannot be negative."
OUT_OF_ORDER = "Row {row}: it ended before the job was created, or after now."
BAD_TIMES = "The job started before it was created, or starts in the future."
BAD_TRACE = "Row {row}, trace {number}: {problem}."


@dataclass(frozen=True)
class TraceRecord:
    """One step a row took: what it was, when, how long, whether it worked, how it was found
    (tier 1 memory, 2 repaired, 3 a model) and the model's exchange if one was asked."""

    node_key: str
    action_type: str  # "node.transform", "web.click", ...
    success: bool
    duration_ms: int
    at: dt.datetime
    attempt: int = 1
    detail: dict = field(default_factory=dict)
    error: str = ""
    tier: int | None = None
    tier_reason: str = ""
    llm_prompt: str = ""
    llm_response: str = ""
    # The portal the step worked on (a web step's endpoint), linked through
    # workflow_trace_endpoint as the engine links it, so rcm_trace shows its portal_id.
    endpoint_id: int | None = None
    llm_model: str = ""
    llm_tokens_used: int | None = None


@dataclass(frozen=True)
class ItemRecord:
    """A row as it ended: completed, failed or cancelled, with its results and its steps."""

    row_number: int
    input_data: dict
    status: str
    completed_at: dt.datetime
    output_data: dict | None = None
    error_message: str = ""
    attempts: int = 1
    traces: tuple[TraceRecord, ...] = ()


ITEM_FIELDS = (
    "org_id",
    "batch_job_id",
    "row_number",
    "input_data",
    "output_data",
    "status",
    "error_message",
    "attempts",
    "created_at",
    "updated_at",
    "completed_at",
)
# A trace row as the engine builds it (trace_row), then what history sets itself.
TRACE_FIELDS = (*TRACE_COLUMNS, "session_id", "created_at")
_TRACE_VALUES = operator.itemgetter(*TRACE_COLUMNS)


@transaction.atomic
def batch_job_record_history(
    *,
    workflow: Workflow,
    revision: WorkflowRevision,
    items: Iterable[ItemRecord],
    created_at: dt.datetime,
    started_at: dt.datetime | None = None,
    created_by=None,
    prompt: str = "",
    file_name: str = "",
    max_concurrency: int = 4,
) -> BatchJob:
    """A finished job of ``items`` on ``revision``, uploaded at ``created_at`` and started at
    ``started_at`` (default: then); returns it with its counters and status.

    ``items`` may be a generator: it is read once, in chunks. Any invalid row (a status that
    is not final, a row number repeated, a time out of order, a trace the table refuses)
    raises ApplicationError ``invalid_history`` naming it, and nothing is written.
    """
    started_at = started_at or created_at
    now = clock.now()
    if revision.workflow_id != workflow.pk:
        _refuse(WRONG_REVISION)
    if not created_at <= started_at <= now:
        _refuse(BAD_TIMES)
    job = job_row_create(
        workflow=workflow,
        revision=revision,
        prompt=prompt,
        file_name=file_name,
        max_concurrency=max_concurrency,
        created_by=created_by,
    )
    counts: dict[str, int] = dict.fromkeys(ITEM_TERMINAL, 0)
    seen: set[int] = set()
    last_end = started_at
    for chunk in _chunks(items):
        for item in chunk:
            _check_item(item, seen=seen, since=created_at, until=now)
            counts[item.status] += 1
            last_end = max(last_end, item.completed_at)
        _chunk_write(job, chunk, user_id=getattr(created_by, "pk", None), created_at=created_at)
    if not seen:
        _refuse(NO_ROWS)
    job.total_rows = len(seen)
    job.successful_rows = counts[ItemStatus.COMPLETED]
    job.failed_rows = counts[ItemStatus.FAILED]
    job.cancelled_rows = counts[ItemStatus.CANCELLED]
    job.processed_rows = job.total_rows
    job.cancel_requested = job.cancelled_rows > 0
    job.status_id = job_final_status(job=job)
    # Queryset updates: save() would stamp updated_at with now, and created_at is history's.
    BatchJob.objects.filter(pk=job.pk).update(
        total_rows=job.total_rows,
        successful_rows=job.successful_rows,
        failed_rows=job.failed_rows,
        cancelled_rows=job.cancelled_rows,
        processed_rows=job.processed_rows,
        cancel_requested=job.cancel_requested,
        status_id=job.status_id,
        created_at=created_at,
        updated_at=last_end,
        started_at=started_at,
        completed_at=last_end,
        speed_since=started_at,
    )
    job.refresh_from_db()
    return job


def _chunks(items: Iterable[ItemRecord]) -> Iterator[list[ItemRecord]]:
    items = iter(items)
    while chunk := list(itertools.islice(items, CHUNK)):
        yield chunk


def _refuse(message: str) -> NoReturn:
    raise ApplicationError("invalid_history", message, {"history": [message]})


def _check_item(item: ItemRecord, *, seen: set[int], since: dt.datetime, until: dt.datetime):
    """Refuse the row if anything in it is not history the tables can hold."""
    row = item.row_number
    if item.status not in ITEM_TERMINAL:
        statuses = ", ".join(ITEM_TERMINAL)
        _refuse(NOT_FINISHED.format(row=row, status=item.status, statuses=statuses))
    if row < 1:
        _refuse(BAD_ROW_NUMBER.format(row=row))
    if row in seen:
        _refuse(DUPLICATE_ROW.format(row=row))
    seen.add(row)
    if item.attempts < 0:
        _refuse(BAD_ATTEMPTS.format(row=row))
    if not since <= item.completed_at <= until:
        _refuse(OUT_OF_ORDER.format(row=row))
    for number, trace in enumerate(item.traces, start=1):
        problem = _trace_problem(trace, since=since, until=until)
        if problem:
            _refuse(BAD_TRACE.format(row=row, number=number, problem=problem))


def _trace_problem(trace: TraceRecord, *, since: dt.datetime, until: dt.datetime) -> str:
    """What the table would refuse in a trace, said before anything is written ('' if none)."""
    if not 1 <= len(trace.action_type) <= MAX_ACTION_TYPE:
        return f"action_type is 1-{MAX_ACTION_TYPE} characters"
    if len(trace.node_key) > MAX_NODE_KEY:
        return f"node_key is at most {MAX_NODE_KEY} characters"
    if trace.tier not in (None, 1, 2, 3):
        return "tier is 1, 2, 3 or none"
    if trace.duration_ms < 0 or trace.attempt < 1:
        return "duration_ms cannot be negative and attempts start at 1"
    if trace.llm_tokens_used is not None and trace.llm_tokens_used < 0:
        return "llm_tokens_used cannot be negative"
    if not since <= trace.at <= until:
        return "it happened before the job was created, or after now"
    return ""


def _chunk_write(job: BatchJob, chunk: list[ItemRecord], *, user_id, created_at) -> None:
    masks = [trace_masker(item.input_data) for item in chunk]
    ids = dict(
        rows_copy(
            BatchJobItem,
            ITEM_FIELDS,
            (
                (
                    job.org_id,
                    job.pk,
                    item.row_number,
                    item.input_data,
                    item.output_data,
                    item.status,
                    mask(item.error_message),
                    item.attempts,
                    created_at,
                    item.completed_at,
                    item.completed_at,
                )
                for item, mask in zip(chunk, masks, strict=True)
            ),
            returning=("row_number", "id"),
        )
    )
    steps = [
        (mask, trace) for item, mask in zip(chunk, masks, strict=True) for trace in item.traces
    ]
    item_of = [ids[item.row_number] for item in chunk for _ in item.traces]
    # The traces' ids are drawn from their sequence first, so that their endpoint links can be
    # written in the same chunk (a COPY returns rows in no order that could be matched).
    trace_ids = ids_allocate(WorkflowTrace, len(steps))
    rows_copy(
        WorkflowTrace,
        ("id", *TRACE_FIELDS),
        (
            (
                trace_id,
                # By name, in the COPY's column order: a row's keys need not be in it.
                *_TRACE_VALUES(
                    trace_row(
                        mask=mask,
                        org_id=job.org_id,
                        workflow_id=job.workflow_id,
                        run_id=None,
                        node_run_id=None,
                        batch_job_item_id=item_id,
                        node_key=trace.node_key,
                        attempt=trace.attempt,
                        user_id=user_id,
                        **step_trace_fields(trace),
                    )
                ),
                "",
                trace.at,
            )
            for trace_id, item_id, (mask, trace) in zip(trace_ids, item_of, steps, strict=True)
        ),
    )
    rows_copy(
        WorkflowTraceEndpoint,
        ("org_id", "trace_id", "endpoint_id"),
        (
            (job.org_id, trace_id, trace.endpoint_id)
            for trace_id, (_, trace) in zip(trace_ids, steps, strict=True)
            if trace.endpoint_id is not None
        ),
    )
