"""v3 batch jobs, their rows and the traces of the work: the high-volume tables, in bulk.

- ``batch_job`` → ``batch_job`` on the endpoint's legacy memory workflow (dbadmin/legacy/
  memory.py), its status through job_status (queued → pending, processing → processing,
  success → completed, error → failed). Imported jobs carry ``cancel_requested``: the feeder
  never starts their pending rows, which belong to the v3 system (a later import brings the
  status they reached there), and V8 offers no cancel or retry of them.
- ``batch_row`` → ``batch_job_item``, its status in a row's words (processing → running); the
  job's counters are recomputed from its items in the same transaction as every chunk, so they
  add up at every commit. v3 kept no row input: ``input_data`` is empty; the row's error code
  and message make its ``error_message``, masked (rcm.phi).
- ``rcm_trace`` → one ``workflow_trace`` (``action_type`` ``legacy.v3_trace``) with the step
  list in ``action_detail`` (masked, rcm.phi), ``used_fallback`` as tier 3 with the fallback
  model, and a ``workflow_trace_endpoint`` for its portal. Its batch item is the one made of
  the v3 row that names the trace; a trace no imported row names is imported without one,
  and reported.
"""

from __future__ import annotations

import json
import math

from django.db import connection

from dbadmin.legacy.signatures import signature_of
from dbadmin.legacy.tables import BulkTable, Planned, Rejected
from dbadmin.legacy.values import ITEM_STATUS
from rcm.lookups import JobStatus
from workflows.models import (
    BatchJob,
    BatchJobItem,
    InvalidRowPolicy,
    ItemStatus,
    WorkflowRevision,
    WorkflowTrace,
    WorkflowTraceEndpoint,
)

JOB_PATH, ROW_PATH, TRACE_PATH = "batch_job", "batch_row", "rcm_trace"
TRACE_ACTION_TYPE = "legacy.v3_trace"
FALLBACK_TIER, FALLBACK_REASON = 3, "v3: the fallback model chose the actions"
MAX_DURATION_MS = 2**31 - 1
JOB_PROMPT = "Imported from v3 batch job {id}."


class BatchJobs(BulkTable):
    path = JOB_PATH
    legacy_table = "batch_job"
    model = BatchJob
    fields = (
        "org", "prompt", "workflow", "revision", "task_type", "endpoint", "status",
        "created_at", "updated_at", "started_at", "completed_at",
    )  # fmt: skip
    defaults = {
        "file_name": "",
        "file_path": "",
        "max_concurrency": 4,
        "on_invalid": InvalidRowPolicy.REJECT,
        "cancel_requested": True,
        **dict.fromkeys(BatchJob.ROW_COUNTER_FIELDS, 0),
        "speed_base_rows": 0,
    }

    def __init__(self, run):
        super().__init__(run)
        # By the workflow's id as the map holds it (text).
        self.revisions = {
            str(workflow_id): revision_id
            for workflow_id, revision_id in WorkflowRevision.objects.filter(
                revision_num=1
            ).values_list("workflow_id", "pk")
        }

    key = "batch_id"
    query = """
        SELECT batch_id, portal_id, task_type_id, status::text AS status, created_at,
               completed_at, result_url, md5(j::text) AS row_md5
          FROM batch_job j WHERE org_id = %(org)s ORDER BY created_at, batch_id
    """

    def fingerprint(self, row) -> tuple:
        if row.portal_id not in self.run.endpoints:
            raise Rejected(f"its portal {row.portal_id} was not imported")
        workflow_id = self.run.target("integration_endpoint", "user_workflow", row.portal_id)
        if workflow_id is None:
            raise Rejected(f"portal {row.portal_id} has no legacy memory workflow")
        task_type = self.run.catalogue.task_types.get(str(row.task_type_id))
        if task_type is None:
            raise Rejected(f"its task type {row.task_type_id} was not imported")
        return (
            self.run.endpoints[row.portal_id][0],
            workflow_id,
            task_type.pk,
            self.run.values("job_status", row.status),
        )

    def values(self, row, resolved: tuple) -> tuple:
        endpoint_id, workflow_id, task_type_id, status = resolved
        created = row.created_at or self.run.now
        prompt = JOB_PROMPT.format(id=row.batch_id)
        if row.result_url:
            prompt += f" Its results: {row.result_url}"
        return (
            self.run.org_id,
            prompt,
            workflow_id,
            self.revisions[workflow_id],
            task_type_id,
            endpoint_id,
            status,
            created,
            row.completed_at or created,
            None if status == JobStatus.PENDING else created,
            row.completed_at,
        )


class BatchRows(BulkTable):
    path = ROW_PATH
    legacy_table = "batch_row"
    model = BatchJobItem
    fields = (
        "org", "batch_job", "row_number", "input_data", "output_data", "status",
        "error_message", "attempts", "run", "created_at", "updated_at", "completed_at",
    )  # fmt: skip

    def __init__(self, run):
        super().__init__(run)
        self.previous = (None, None, None)  # (batch_id, row_idx, row_id) of the last row read

    key = "row_id"
    query = """
        SELECT r.row_id, r.batch_id, r.row_idx, r.status::text AS status, r.error_code,
               r.error_msg, r.created_at, r.updated_at, md5(r::text) AS row_md5
          FROM batch_row r JOIN batch_job j USING (batch_id) WHERE j.org_id = %(org)s
         ORDER BY r.batch_id, r.row_idx, r.row_id
    """

    def fingerprint(self, row) -> tuple:
        previous, self.previous = self.previous, (row.batch_id, row.row_idx, row.row_id)
        if previous[:2] == (row.batch_id, row.row_idx):
            # v3 had no unique (batch_id, row_idx); V8 has. The rows come in order, so the
            # one with the lowest row_id keeps the number, in every run alike.
            self.previous = previous
            raise Rejected(
                f"row_idx {row.row_idx} of batch job {row.batch_id} is v3 row {previous[2]}'s"
            )
        job_id = self.run.target("batch_job", "batch_job", row.batch_id)
        if job_id is None:
            raise Rejected(f"its batch job {row.batch_id} was not imported")
        if row.row_idx < 0:
            raise Rejected(f"row_idx {row.row_idx} is negative")
        job_status = self.run.values("job_status", row.status)
        if job_status not in ITEM_STATUS:
            raise Rejected(f"job_status {row.status!r} becomes {job_status!r}, not a row's status")
        return (job_id, ITEM_STATUS[job_status])

    def values(self, row, resolved: tuple) -> tuple:
        job_id, status = resolved
        created = row.created_at or self.run.now
        updated = row.updated_at or created
        # Masked as batch history masks a row's error (workflows/services/history.py); v3 kept
        # no row input, so there are no declared values, only patient-data shapes.
        error = self.run.mask(": ".join(part for part in (row.error_code, row.error_msg) if part))
        return (
            self.run.org_id,
            int(job_id),
            row.row_idx,
            {},
            None,
            status,
            error,
            0 if status == ItemStatus.PENDING else 1,
            None,
            created,
            updated,
            updated if status in (ItemStatus.COMPLETED, ItemStatus.FAILED) else None,
        )

    def _write(self, created: list[Planned], changed: list[Planned]) -> None:
        # A v3 row may have moved to another job since it was imported: the job it leaves is
        # recounted too, and which job that is must be read before the row is updated.
        jobs = set(
            BatchJobItem.objects.filter(pk__in=[planned.target_id for planned in changed])
            .values_list("batch_job_id", flat=True)
            .distinct()
            if changed
            else ()
        )
        super()._write(created, changed)
        job = self.fields.index("batch_job")
        jobs |= {planned.values[job] for planned in (*created, *changed)}
        if jobs:
            job_counters_recount(sorted(jobs))


def job_counters_recount(job_ids: list[int]) -> None:
    """Set the jobs' counters from their items (batch_job's CHECKs: they add up); a job left
    with no items counts zeros."""
    job, item = BatchJob._meta, BatchJobItem._meta

    def column(meta, name: str) -> str:
        return connection.ops.quote_name(meta.get_field(name).column)

    status, job_key = column(item, "status"), column(item, "batch_job")
    counted = {
        "pending_rows": ItemStatus.PENDING,
        "running_rows": ItemStatus.RUNNING,
        "successful_rows": ItemStatus.COMPLETED,
        "failed_rows": ItemStatus.FAILED,
        "cancelled_rows": ItemStatus.CANCELLED,
    }
    counts = ", ".join(f"count(*) FILTER (WHERE i.{status} = %s) AS {name}" for name in counted)
    assignments = ", ".join(f"{column(job, name)} = c.{name}" for name in counted)
    done = " + ".join(f"c.{name}" for name in ("successful_rows", "failed_rows", "cancelled_rows"))
    item_key = connection.ops.quote_name(item.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(job.db_table)} AS j SET "  # noqa: S608 - identifiers from the models, quoted; values are parameters
            f"{column(job, 'total_rows')} = c.total_rows, {assignments}, "
            f"{column(job, 'processed_rows')} = {done} "
            f"FROM (SELECT jobs.job_id, count(i.{item_key}) AS total_rows, {counts} "
            f"FROM unnest(%s::bigint[]) AS jobs (job_id) "
            f"LEFT JOIN {connection.ops.quote_name(item.db_table)} AS i "
            f"ON i.{job_key} = jobs.job_id GROUP BY jobs.job_id) AS c "
            f"WHERE j.{connection.ops.quote_name(job.pk.column)} = c.job_id",
            [*counted.values(), job_ids],
        )


class Traces(BulkTable):
    path = TRACE_PATH
    legacy_table = "rcm_trace"
    model = WorkflowTrace
    fields = (
        "org", "workflow", "batch_job_item", "run", "node_run", "node_key", "attempt",
        "action_type", "action_detail", "success", "duration_ms", "error_detail", "llm_prompt",
        "llm_response", "llm_model", "llm_tokens_used", "tier", "tier_reason", "user",
        "session_id", "created_at",
    )  # fmt: skip

    key = "trace_id"
    # The row naming each trace (the first, if several do), found with one grouping rather than
    # a look-up per trace: v3 has no index on batch_row.trace_id.
    query = """
        SELECT t.trace_id, t.portal_id, t.task_signature, t.prompt_version, t.used_fallback,
               t.fallback_model, t.trace::text AS trace, t.duration_ms::text AS duration_ms,
               t.success, t.created_at, r.row_id, r.row_status, md5(t::text) AS row_md5
          FROM rcm_trace t LEFT JOIN (
                SELECT DISTINCT ON (b.trace_id) b.trace_id, b.row_id,
                       b.status::text AS row_status
                  FROM batch_row b JOIN batch_job j USING (batch_id)
                 WHERE j.org_id = %(org)s AND b.trace_id IS NOT NULL
                 ORDER BY b.trace_id, b.row_id
               ) r USING (trace_id)
         WHERE t.org_id = %(org)s ORDER BY t.created_at, t.trace_id
    """

    def fingerprint(self, row) -> tuple:
        if row.portal_id not in self.run.endpoints:
            raise Rejected(f"its portal {row.portal_id} was not imported")
        return (
            self.run.endpoints[row.portal_id][0],
            self.run.target("integration_endpoint", "user_workflow", row.portal_id),
            self.run.target("batch_row", "batch_job_item", row.row_id) if row.row_id else None,
            signature_of(self.run, row.task_signature) if row.task_signature else None,
        )

    def values(self, row, resolved: tuple) -> tuple:
        _, workflow_id, item_id, signature_id = resolved
        steps = _steps(json.loads(row.trace))
        success = row.success
        if success is None:
            if row.row_status not in ("success", "error"):
                raise Rejected("success is NULL, and no finished batch row tells the outcome")
            success = row.row_status == "success"
        if item_id is None:
            self.report.note(
                self.path,
                row.trace_id,
                f"imported without a batch item: its v3 row {row.row_id} was not imported"
                if row.row_id
                else "imported without a batch item: no v3 batch row names it (deleted?)",
            )
        if row.task_signature and signature_id is None:
            self.report.note(
                self.path, row.trace_id, f"its task signature {row.task_signature} is not in V8"
            )
        detail = {
            "steps": self.run.mask(steps),
            "prompt_version": row.prompt_version,
            "task_signature_id": int(signature_id) if signature_id else None,
            "v3": {"trace_id": str(row.trace_id), "task_signature": _text(row.task_signature)},
        }
        fallback = bool(row.used_fallback)
        return (
            self.run.org_id,
            workflow_id,
            int(item_id) if item_id else None,
            None,
            None,
            "",
            1,
            TRACE_ACTION_TYPE,
            detail,
            success,
            _duration(row.duration_ms, steps),
            "",
            "",
            "",
            (row.fallback_model or "")[:200],
            None,
            FALLBACK_TIER if fallback else None,
            FALLBACK_REASON if fallback else "",
            None,
            "",
            row.created_at or self.run.now,
        )

    def written(self, created: list[Planned], changed: list[Planned]) -> None:
        """Each trace's portal, as its workflow_trace_endpoint (replaced on an update)."""
        if changed:
            WorkflowTraceEndpoint.objects.filter(
                trace_id__in=[planned.target_id for planned in changed]
            ).delete()
        planned = (*created, *changed)
        if not planned:
            return
        meta = WorkflowTraceEndpoint._meta
        org, trace, endpoint = (
            connection.ops.quote_name(meta.get_field(name).column)
            for name in ("org", "trace", "endpoint")
        )
        # Two arrays of numbers as the statement's parameters: lighter than a COPY through a
        # temporary table for rows of nothing but ids.
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({org}, {trace}, "  # noqa: S608 - identifiers from the models, quoted; values are parameters
                f"{endpoint}) SELECT %s, trace, endpoint "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS written (trace, endpoint)",
                [
                    self.run.org_id,
                    [p.target_id for p in planned],
                    [self.run.endpoints[p.row.portal_id][0] for p in planned],
                ],
            )


def _text(value) -> str | None:
    return str(value) if value is not None else None


def _steps(trace) -> list:
    """The v3 step list, checked: a list of objects whose ``t_ms`` (if any) is a number."""
    if not isinstance(trace, list):
        raise Rejected("trace is not a list of steps")
    for number, step in enumerate(trace, start=1):
        if not isinstance(step, dict):
            raise Rejected(f"step {number} of the trace is not an object")
        t_ms = step.get("t_ms")
        if t_ms is not None and not _is_number(t_ms):
            raise Rejected(f"step {number}: t_ms {t_ms!r} is not a number")
    return trace


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _duration(text: str | None, steps: list) -> int:
    """duration_ms (text: some v3 deployments stored it so), or the steps' sum when NULL."""
    if text is None:
        return min(int(sum(step.get("t_ms") or 0 for step in steps)), MAX_DURATION_MS)
    value = text.strip()
    if not value.isdigit() or int(value) > MAX_DURATION_MS:
        raise Rejected(f"duration_ms {text!r} is not a whole number of milliseconds")
    return int(value)


def import_batches(run) -> None:
    BatchJobs(run).run_all()
    BatchRows(run).run_all()
    Traces(run).run_all()
