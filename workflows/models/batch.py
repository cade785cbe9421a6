"""Batch jobs: a spreadsheet of rows, each run through a published workflow revision.

The counters live on the job and change in the same transaction as the item whose status
they count, so that ``total_rows = pending + running + successful + failed + cancelled`` holds
at every instant (a CHECK constraint says so).
"""

from django.db import models
from django.db.models import F, Q
from django.db.models.fields.json import KT
from django.db.models.functions import Lower

from rcm.db.tenancy import TenantModel
from rcm.lookups import JobStatus


class InvalidRowPolicy(models.TextChoices):
    REJECT = "reject"  # any invalid row refuses the whole upload
    SKIP = "skip"  # invalid rows become failed items; valid rows run


class ItemStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ITEM_TERMINAL = (ItemStatus.COMPLETED, ItemStatus.FAILED, ItemStatus.CANCELLED)

# Where a row keeps what people search it by: the task catalogue's patient fields
# (workflows/migrations/0004_seed_catalog.py).
MEMBER_ID_FIELD = "member_id"
FIRST_NAME_FIELD, LAST_NAME_FIELD = "patient_first_name", "patient_last_name"


def _search_key(field_name: str) -> models.GeneratedField:
    """A field of the row's input in lower case, kept by PostgreSQL as the row is written, in
    byte order (collation "C") so that "starts with" is a range of an index.

    A stored column, not an expression index: under row-level security the planner uses an
    index only for conditions it knows leak nothing (leakproof operators on plain columns),
    and lower(input_data ->> ...) is neither; a comparison of a column is."""
    return models.GeneratedField(
        expression=Lower(KT(f"input_data__{field_name}")),
        output_field=models.TextField(db_collation="C"),
        db_persist=True,
    )


class BatchJob(TenantModel):
    """One uploaded file (or JSON rows) running through one workflow revision."""

    # The job's counters of its rows, in the order the pages show them.
    ROW_COUNTER_FIELDS = (
        "total_rows",
        "pending_rows",
        "running_rows",
        "successful_rows",
        "failed_rows",
        "cancelled_rows",
        "processed_rows",
    )

    id = models.BigAutoField(primary_key=True, db_column="batch_job_id")
    prompt = models.TextField(blank=True, default="")  # the operator's description
    file_name = models.CharField(max_length=255, blank=True, default="")
    file_path = models.CharField(max_length=500, blank=True, default="")
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.PROTECT, related_name="+")
    revision = models.ForeignKey(
        "workflows.WorkflowRevision", on_delete=models.PROTECT, related_name="batch_jobs"
    )
    task_type = models.ForeignKey(
        "workflows.TaskType", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    endpoint = models.ForeignKey(
        "tenants.Endpoint", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    max_concurrency = models.PositiveIntegerField(default=4)
    on_invalid = models.CharField(
        max_length=10, choices=InvalidRowPolicy.choices, default=InvalidRowPolicy.REJECT
    )
    status = models.ForeignKey(
        "workflows.JobStatusLu",
        on_delete=models.PROTECT,
        db_column="status",
        related_name="+",
        default=JobStatus.PENDING,
    )
    total_rows = models.PositiveIntegerField(default=0)
    pending_rows = models.PositiveIntegerField(default=0)
    running_rows = models.PositiveIntegerField(default=0)
    successful_rows = models.PositiveIntegerField(default=0)
    failed_rows = models.PositiveIntegerField(default=0)
    cancelled_rows = models.PositiveIntegerField(default=0)
    # V8's column: rows that reached an end (successful + failed + cancelled).
    processed_rows = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    # When the feeder last started one of its rows: organizations take turns by it.
    last_fed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        "tenants.User",
        on_delete=models.SET_NULL,
        null=True,
        db_column="created_by",
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # The speed shown is the rows that ran since ``speed_since`` (the first feed, or the first
    # feed after a retry) beyond ``speed_base_rows`` (the rows already processed then: those
    # refused at upload, those that ran before the retry); neither counts time nor rows that
    # were not running.
    speed_since = models.DateTimeField(null=True, blank=True)
    speed_base_rows = models.PositiveIntegerField(default=0, db_default=0)

    class Meta:
        db_table = "batch_job"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    total_rows=F("pending_rows")
                    + F("running_rows")
                    + F("successful_rows")
                    + F("failed_rows")
                    + F("cancelled_rows")
                ),
                name="batch_job_counters_add_up",
            ),
            models.CheckConstraint(
                condition=Q(
                    processed_rows=F("successful_rows") + F("failed_rows") + F("cancelled_rows")
                ),
                name="batch_job_processed_adds_up",
            ),
            models.CheckConstraint(
                condition=Q(max_concurrency__gte=1), name="batch_job_max_concurrency_positive"
            ),
        ]
        indexes = [
            models.Index(
                fields=["endpoint"],
                condition=Q(pending_rows__gt=0) | Q(running_rows__gt=0),
                name="batch_job_active_by_endpoint",
            ),
            # The console's home: the jobs in flight, newest first.
            models.Index(
                fields=["org", "-created_at"],
                condition=Q(completed_at__isnull=True),
                name="batch_job_in_flight",
            ),
        ]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.status_id})"


class BatchJobItem(TenantModel):
    """One row of a batch job, with its input, its result and the run that produced it."""

    id = models.BigAutoField(primary_key=True, db_column="batch_job_item_id")
    batch_job = models.ForeignKey(BatchJob, on_delete=models.CASCADE, related_name="items")
    row_number = models.PositiveIntegerField()
    input_data = models.JSONField(default=dict)
    output_data = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=ItemStatus.choices, default=ItemStatus.PENDING)
    error_message = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    # What the console searches a job's rows by (workflows/selectors/batch.py).
    member_id_key = _search_key(MEMBER_ID_FIELD)
    first_name_key = _search_key(FIRST_NAME_FIELD)
    last_name_key = _search_key(LAST_NAME_FIELD)
    run = models.ForeignKey(
        "workflows.WorkflowRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "batch_job_item"
        ordering = ["batch_job", "row_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["batch_job", "row_number"], name="batch_job_item_row_unique"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ItemStatus.values), name="batch_job_item_status_valid"
            ),
        ]
        indexes = [
            # The feeder's pick: the next pending rows of a job, in row order.
            models.Index(
                fields=["batch_job", "row_number"],
                condition=Q(status=ItemStatus.PENDING),
                name="batch_job_item_pending",
            ),
            models.Index(fields=["run"], name="batch_job_item_run"),
            # The console's home: the rows that ended today, counted by status from the index.
            models.Index(
                fields=["org", "completed_at"],
                include=["status"],
                condition=Q(completed_at__isnull=False),
                name="batch_job_item_ended",
            ),
            # A job's rows of one of the rarer statuses in row order: the console's filter, the
            # failed-rows file. Pending rows have the index above, and completed ones (most of
            # a job) are found at once by walking the row order; rows are inserted pending, so
            # an upload writes nothing here.
            models.Index(
                fields=["batch_job", "status", "row_number"],
                condition=Q(
                    status__in=[ItemStatus.RUNNING, ItemStatus.FAILED, ItemStatus.CANCELLED]
                ),
                name="batch_job_item_status_row",
            ),
            # The console's searches within a job: member IDs and patient names starting with
            # what was typed, as ranges of these.
            models.Index(fields=["batch_job", "member_id_key"], name="batch_job_item_member_key"),
            models.Index(fields=["batch_job", "first_name_key"], name="batch_job_item_first_key"),
            models.Index(fields=["batch_job", "last_name_key"], name="batch_job_item_last_key"),
        ]

    def __str__(self) -> str:
        return f"{self.batch_job_id}#{self.row_number} ({self.status})"
