"""Batch jobs: creating them, feeding their rows to the engine, settling rows as runs end.

Feeding (``batch_feed``): pending rows start as runs, never more at once than the job's
``max_concurrency`` nor than the endpoint's ``config.max_concurrency`` summed over every job
using that endpoint. Organizations take turns (round-robin by the time each was last fed), so
that one organization's large batch never starves another's small one. Feeders are serialised
by an advisory lock: two of them at once would both see the same free slot.

Settling (``batch_item_settle``): when an item's run ends, the item and the job's counters
change in the run's own completion transaction, and a feed is sent after the commit to fill the
slot the item freed.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from redis.exceptions import RedisError

from rcm import clock, messaging
from rcm.celery import app as celery_app
from rcm.context import org_context
from rcm.errors import Conflict
from rcm.lookups import JobStatus, WorkflowStatus
from workflows.engine import hooks
from workflows.models import (
    BatchJob,
    BatchJobItem,
    InvalidRowPolicy,
    ItemStatus,
    RunResult,
    RunStatus,
    Workflow,
    WorkflowRevision,
)
from workflows.selectors.batch import retryable_items
from workflows.services.runs import runs_start_for_items
from workflows.validation.files import Row

INSERT_CHUNK = 2000
# Rows one organization may start in one turn of the feeder's round.
TURN = 8
# Rows started by one feeder pass; the pass is one transaction, kept short so that its runs'
# messages leave early (the task sends another pass when this one was full).
FEED_BATCH = 50
JOB_FINISHED = "This batch job has already finished ({status})."
NOTHING_TO_RETRY = "This batch job has no failed rows to retry."


# -- creating -----------------------------------------------------------------------------


@transaction.atomic
def batch_job_create(
    *,
    workflow: Workflow,
    revision: WorkflowRevision,
    rows: Iterable[Row],
    created_by=None,
    prompt: str = "",
    file_name: str = "",
    file_path: str = "",
    max_concurrency: int = 4,
    on_invalid: str = InvalidRowPolicy.REJECT,
) -> BatchJob:
    """A job and its items. Rows carrying an error become failed items (on_invalid=skip; with
    reject the caller refuses the upload before it gets here). Feeding starts at the commit."""
    job = job_row_create(
        workflow=workflow,
        revision=revision,
        prompt=prompt,
        file_name=file_name,
        file_path=file_path,
        max_concurrency=max_concurrency,
        on_invalid=on_invalid,
        created_by=created_by,
    )
    counts = {ItemStatus.PENDING: 0, ItemStatus.FAILED: 0}
    now = clock.now()
    rows = iter(rows)
    while chunk := list(itertools.islice(rows, INSERT_CHUNK)):
        items = []
        for row in chunk:
            status = ItemStatus.FAILED if row.error else ItemStatus.PENDING
            counts[status] += 1
            items.append(
                BatchJobItem(
                    org_id=job.org_id,
                    batch_job=job,
                    row_number=row.row_number,
                    input_data=row.input_data,
                    status=status,
                    error_message=row.error,
                    completed_at=now if row.error else None,
                )
            )
        BatchJobItem.objects.bulk_create(items)
    total = counts[ItemStatus.PENDING] + counts[ItemStatus.FAILED]
    BatchJob.objects.filter(pk=job.pk).update(
        total_rows=total,
        pending_rows=counts[ItemStatus.PENDING],
        failed_rows=counts[ItemStatus.FAILED],
        processed_rows=counts[ItemStatus.FAILED],
        speed_base_rows=counts[ItemStatus.FAILED],
    )
    job.refresh_from_db()
    if job.pending_rows == 0:
        _job_finish_if_done(job_id=job.pk)
        job.refresh_from_db()
    else:
        feed_soon()
    return job


def job_row_create(*, workflow: Workflow, revision: WorkflowRevision, **fields) -> BatchJob:
    """The job's own row, before its items: the organization is the workflow's, the task type
    and endpoint those the revision was published with."""
    return BatchJob.objects.create(
        org_id=workflow.org_id,
        workflow=workflow,
        revision=revision,
        task_type_id=revision.graph.get("task_type_id"),
        endpoint_id=revision.graph.get("endpoint_id"),
        **fields,
    )


# The feed task's name (workflows/tasks.py): sent by name, so that this service does not import
# the tasks that call it.
BATCH_FEED = "workflows.batch_feed"
# Set while a feed message waits in the queue; the feeder clears it as it starts. Every row
# that ends below its job's refill mark asks for a feed, and one waiting feed serves them all:
# without the mark, a job of 200 slots queued a feed per ending row, each a pass over the
# candidates under the feeder's lock. It expires so that a lost message blocks nothing (beat
# also feeds every few seconds).
FEED_QUEUED_KEY = "batch:feed-queued"
FEED_QUEUED_TTL_S = 10


def feed_soon() -> None:
    """Send a feed after the current transaction commits, unless one is already waiting."""
    transaction.on_commit(feed_send)


def feed_send() -> None:
    """Best-effort, like every message after a commit (rcm/messaging.py): beat feeds every few
    seconds, so a feed the broker refused only delays the rows."""
    try:
        waiting = not cache.add(FEED_QUEUED_KEY, 1, timeout=FEED_QUEUED_TTL_S)
    except RedisError:
        waiting = False  # no mark to go by: sending one feed too many costs one empty pass
    if not waiting:
        # The engine's queue, named per message as dispatch.enqueue does.
        messaging.send(celery_app.signature(BATCH_FEED), queue=settings.CELERY_TASK_DEFAULT_QUEUE)


# -- feeding ------------------------------------------------------------------------------


@dataclass
class Candidate:
    org_id: object
    job_id: int
    endpoint_id: int | None
    free_in_job: int
    last_fed_at: object


def _candidates() -> list[Candidate]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM batch_feed_candidates()")
        return [Candidate(*row) for row in cursor.fetchall()]


def _endpoint_room() -> dict[int, int]:
    """Free slots per endpoint: its max_concurrency minus the rows running on it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT endpoint_id, room FROM batch_endpoint_room()")
        return dict(cursor.fetchall())


def batch_feed(*, limit: int = FEED_BATCH) -> int:
    """Start pending rows wherever there is room, organizations taking turns; how many."""
    # Cleared before the candidates are read: a row ending from here on asks for a new feed.
    # (Without the cache the mark is only left to expire.)
    with contextlib.suppress(RedisError):
        cache.delete(FEED_QUEUED_KEY)
    with transaction.atomic():
        # One feeder at a time: two would both see the same free slot and overfill it.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('batch_feeder'))")
        candidates = _candidates()
        if not candidates:
            return 0
        endpoint_room = _endpoint_room()
        by_org: dict = defaultdict(list)
        for candidate in sorted(
            candidates, key=lambda c: (c.last_fed_at is not None, c.last_fed_at, c.job_id)
        ):
            by_org[candidate.org_id].append(candidate)
        # Organizations in the order they were last fed (never fed first), up to TURN rows
        # each per turn, until the slots or the rows run out: their runs reach the workers'
        # queue interleaved, so a large batch queued first does not hold a small one back.
        started = 0
        while started < limit:
            progressed = False
            for org_id, jobs in by_org.items():
                job = next((c for c in jobs if _room(c, endpoint_room) > 0), None)
                if job is None:
                    continue
                wanted = min(TURN, _room(job, endpoint_room), limit - started)
                with org_context(org_id):
                    count = _start_items(job_id=job.job_id, count=wanted)
                if count < wanted:
                    job.free_in_job = 0  # no pending rows left (or all being started)
                job.free_in_job -= count
                if job.endpoint_id is not None:
                    endpoint_room[job.endpoint_id] -= count
                started += count
                progressed = progressed or count > 0
                if started >= limit:
                    break
            if not progressed:
                break
        return started


def _room(candidate: Candidate, endpoint_room: dict[int, int]) -> int:
    if candidate.endpoint_id is None:
        return candidate.free_in_job
    return min(candidate.free_in_job, endpoint_room.get(candidate.endpoint_id, 0))


def _start_items(*, job_id: int, count: int) -> int:
    """pending -> running for the job's next ``count`` rows, with their runs and counters."""
    # The job's row first, then its items: the lock order of every writer of both.
    job = (
        BatchJob.objects.select_for_update(of=("self",))
        .select_related("workflow", "revision")
        .get(pk=job_id)
    )
    if job.cancel_requested:
        return 0
    items = list(
        BatchJobItem.objects.filter(batch_job_id=job_id, status=ItemStatus.PENDING)
        .order_by("row_number")
        .select_for_update(skip_locked=True)[:count]
    )
    if not items:
        return 0
    now = clock.now()
    if job.workflow.status_id != WorkflowStatus.ACTIVE:
        # Suspended or archived since the upload: the rows fail, saying why.
        message = f"The workflow is {job.workflow.status_id}; it no longer runs."
        BatchJobItem.objects.filter(pk__in=[item.pk for item in items]).update(
            status=ItemStatus.FAILED,
            attempts=F("attempts") + 1,
            error_message=message,
            completed_at=now,
            updated_at=now,
        )
        BatchJob.objects.filter(pk=job_id).update(
            pending_rows=F("pending_rows") - len(items),
            failed_rows=F("failed_rows") + len(items),
            processed_rows=F("processed_rows") + len(items),
            updated_at=now,
        )
        _job_finish_if_done(job_id=job_id)
        return len(items)
    # Running (and counted so) before their runs exist: a run can end inside run_start (a
    # workflow of an entry and an outcome), and it then settles its row at once.
    BatchJobItem.objects.filter(pk__in=[item.pk for item in items]).update(
        status=ItemStatus.RUNNING, attempts=F("attempts") + 1, updated_at=now
    )
    BatchJob.objects.filter(pk=job_id).update(
        pending_rows=F("pending_rows") - len(items),
        running_rows=F("running_rows") + len(items),
        last_fed_at=now,
        started_at=Coalesce(F("started_at"), now),
        speed_since=Coalesce(F("speed_since"), now),
        status_id=JobStatus.PROCESSING,
        updated_at=now,
    )
    for item, run in zip(items, runs_start_for_items(job=job, items=items), strict=True):
        item.run = run
    BatchJobItem.objects.bulk_update(items, ["run"])
    return len(items)


# -- settling -----------------------------------------------------------------------------


# The settling reads, in one message: the job's row locked first (every writer of a job's
# items takes it first: cancel, retry, the feeder; so the item needs no lock of its own, and
# the one lock order rules out deadlocks), then the item and its run's context.
_SETTLE_READ_SQL = """
SELECT batch_job_id FROM batch_job
 WHERE batch_job_id = (SELECT batch_job_id FROM batch_job_item
                        WHERE batch_job_item_id = %(item)s) FOR UPDATE;
SELECT i.batch_job_id, i.status, i.run_id, r.context
  FROM batch_job_item i JOIN workflow_run r ON r.id = %(run)s
 WHERE i.batch_job_item_id = %(item)s
"""
# The item and the job's counters, in one message too.
_SETTLE_WRITE_SQL = """
UPDATE batch_job_item SET status = %(status)s, output_data = %(output)s::jsonb,
       error_message = %(error)s, completed_at = %(now)s, updated_at = %(now)s
 WHERE batch_job_item_id = %(item)s;
UPDATE batch_job SET running_rows = running_rows - 1, processed_rows = processed_rows + 1,
       {counter} = {counter} + 1, updated_at = %(now)s
 WHERE batch_job_id = %(job)s RETURNING pending_rows, running_rows, max_concurrency
"""


def batch_item_settle(finished: hooks.RunFinished) -> None:
    """A run ended (inside the run's completion transaction; registered with the engine's
    hooks in WorkflowsConfig.ready()): if it was an item's, the item's status, output and the
    job's counters move together, then a feed refills the job if it is low."""
    run, status, result, error = finished.run, finished.status, finished.result, finished.error
    if run.batch_job_item_id is None:
        return
    with connection.cursor() as cursor:
        cursor.execute(_SETTLE_READ_SQL, {"item": run.batch_job_item_id, "run": run.pk})
        cursor.nextset()
        job_id, item_status_now, item_run_id, context = cursor.fetchone()
    if item_status_now != ItemStatus.RUNNING or item_run_id not in (None, run.pk):
        # A run of an item that has since moved on. (No run yet: this is the item's first run
        # ending inside its own start, before the feeder records it.)
        return
    if status == RunStatus.CANCELLED:
        item_status, counter = ItemStatus.CANCELLED, "cancelled_rows"
    elif status == RunStatus.COMPLETED and result == RunResult.SUCCESS:
        item_status, counter = ItemStatus.COMPLETED, "successful_rows"
    else:
        item_status, counter = ItemStatus.FAILED, "failed_rows"
    context = json.loads(context) if isinstance(context, str) else context
    with connection.cursor() as cursor:
        cursor.execute(
            _SETTLE_WRITE_SQL.format(counter=counter),
            {
                "status": item_status,
                "output": json.dumps(_outputs_of(context), cls=DjangoJSONEncoder),
                "error": "" if item_status == ItemStatus.COMPLETED else (error or result),
                "now": clock.now(),
                "item": run.batch_job_item_id,
                "job": job_id,
            },
        )
        cursor.nextset()
        pending, running, max_concurrency = cursor.fetchone()
    if not pending and not running:
        _job_finish_if_done(job_id=job_id)
    elif pending and running <= _refill_at(max_concurrency):
        feed_soon()


def _refill_at(max_concurrency: int) -> int:
    """How low a job's running rows fall before a feed refills it. A job allowed 4 at once
    is refilled as each row ends; one allowed 200, once 50 have ended, so that the feeder's
    fixed cost is shared by many rows. (A job held below its own limit by its endpoint's is
    always under this mark, so its every slot is refilled.)"""
    return max_concurrency - max(1, max_concurrency // 4)


def _outputs_of(context: dict | None) -> dict:
    """What the run produced, flat: every node's output keys in one object. Where two nodes
    name an output alike, one of them wins (the context is JSONB, which keeps no node order):
    workflows that feed batch results give their outputs distinct names."""
    merged: dict = {}
    for entry in (context or {}).get("nodes", {}).values():
        if isinstance(entry.get("output"), dict):
            merged.update(entry["output"])
    merged.pop("result", None)  # the outcome node's own marker
    return merged


def job_final_status(*, job: BatchJob) -> str:
    """The status of a job none of whose rows is pending or running, from its counters."""
    if job.cancel_requested and job.cancelled_rows:
        return JobStatus.CANCELLED
    if job.failed_rows == 0:
        return JobStatus.COMPLETED
    if job.successful_rows == 0:
        return JobStatus.FAILED
    return JobStatus.PARTIALLY_COMPLETED


def _job_finish_if_done(*, job_id: int) -> None:
    job = BatchJob.objects.select_for_update().get(pk=job_id)
    if job.pending_rows or job.running_rows:
        return
    status = job_final_status(job=job)
    now = clock.now()
    BatchJob.objects.filter(pk=job_id).update(status_id=status, completed_at=now, updated_at=now)


# -- cancel and retry ---------------------------------------------------------------------


@transaction.atomic
def batch_job_cancel(*, job: BatchJob) -> BatchJob:
    """Nothing new starts; running rows finish; the other rows become cancelled."""
    job = BatchJob.objects.select_for_update().get(pk=job.pk)
    if job.completed_at is not None:
        raise Conflict("job_finished", JOB_FINISHED.format(status=job.status_id))
    now = clock.now()
    cancelled = BatchJobItem.objects.filter(batch_job=job, status=ItemStatus.PENDING).update(
        status=ItemStatus.CANCELLED, completed_at=now, updated_at=now, error_message="cancelled"
    )
    BatchJob.objects.filter(pk=job.pk).update(
        cancel_requested=True,
        pending_rows=F("pending_rows") - cancelled,
        cancelled_rows=F("cancelled_rows") + cancelled,
        processed_rows=F("processed_rows") + cancelled,
        updated_at=now,
    )
    _job_finish_if_done(job_id=job.pk)
    job.refresh_from_db()
    return job


@dataclass(frozen=True)
class Retried:
    """A job whose failed rows were sent back, and how many rows that was."""

    job: BatchJob
    rows: int


@transaction.atomic
def batch_job_retry_failed(*, job: BatchJob) -> Retried:
    """Failed rows run again (their attempts count on); the job is processing again."""
    job = BatchJob.objects.select_for_update().get(pk=job.pk)
    if job.cancel_requested:
        raise Conflict("job_cancelled", JOB_FINISHED.format(status=job.status_id))
    now = clock.now()
    retried = retryable_items(job=job).update(
        status=ItemStatus.PENDING, completed_at=None, updated_at=now, error_message="", run=None
    )
    if not retried:
        raise Conflict("nothing_to_retry", NOTHING_TO_RETRY)
    BatchJob.objects.filter(pk=job.pk).update(
        pending_rows=F("pending_rows") + retried,
        failed_rows=F("failed_rows") - retried,
        processed_rows=F("processed_rows") - retried,
        speed_since=None,
        speed_base_rows=F("processed_rows") - retried,
        status_id=JobStatus.PROCESSING,
        completed_at=None,
        updated_at=now,
    )
    feed_soon()
    job.refresh_from_db()
    return Retried(job=job, rows=retried)


def rows_numbered(rows: Iterable[dict], *, errors: dict[int, str] | None = None) -> Iterator[Row]:
    """JSON rows as Rows, numbered from 1."""
    errors = errors or {}
    for number, row in enumerate(rows, start=1):
        yield Row(row_number=number, input_data=row, error=errors.get(number, ""))
