"""Runs of a workflow revision, and the durable state of each node within a run.

The state lives here, not in Celery: a task message only says "execute node run N", and a node
run is claimed with a conditional UPDATE, so a message delivered twice does the work once.
"""

from django.contrib.postgres.functions import RandomUUID
from django.db import models
from django.db.models import Q

from rcm.db.tenancy import TenantModel


class RunStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"


class RunResult(models.TextChoices):
    """The result of the outcome node a completed run ended at (its config's "result")."""

    SUCCESS = "success"
    FAILURE = "failure"


RUN_TERMINAL = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMEOUT)
# A run that did not succeed and was not called off: it failed at a node, timed out, or
# completed at an outcome marked failure (a business answer such as "member not found").
RUN_FAILED = Q(status__in=[RunStatus.FAILED, RunStatus.TIMEOUT]) | Q(
    status=RunStatus.COMPLETED, result=RunResult.FAILURE
)


class NodeRunStatus(models.TextChoices):
    PENDING = "pending"  # waiting for its incoming transitions to be decided
    READY = "ready"  # decided to run; a message is (or will be) on the queue
    RUNNING = "running"  # claimed by a worker, under a lease
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"  # a dead path: no incoming transition fired
    CANCELLED = "cancelled"


NODE_TERMINAL = (
    NodeRunStatus.COMPLETED,
    NodeRunStatus.FAILED,
    NodeRunStatus.SKIPPED,
    NodeRunStatus.CANCELLED,
)


class WorkflowRun(TenantModel):
    """One input row going through one revision of a workflow."""

    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.PROTECT, related_name="+")
    revision = models.ForeignKey(
        "workflows.WorkflowRevision", on_delete=models.PROTECT, related_name="runs"
    )
    input = models.JSONField(default=dict)
    # {"input": {...}, "nodes": {key: {"output": {...}, "label": "..."}}}
    context = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING)
    # The key and result ("success" | "failure") of the outcome node that ended the run.
    outcome = models.CharField(max_length=64, blank=True, default="")
    result = models.CharField(max_length=10, blank=True, default="")
    error = models.TextField(blank=True, default="")
    external_id = models.CharField(max_length=200, null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # The batch row this run serves, if any: its end moves the row and the job's counters.
    batch_job_item = models.ForeignKey(
        "workflows.BatchJobItem",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="runs",
    )
    created_by = models.ForeignKey(
        "tenants.User", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "workflow_run"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "external_id"],
                condition=Q(external_id__isnull=False),
                name="workflow_run_external_id_unique",
            ),
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="workflow_run_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["org", "workflow", "-created_at"], name="workflow_run_listing"),
            models.Index(
                fields=["deadline_at"],
                condition=Q(status__in=[RunStatus.PENDING, RunStatus.RUNNING]),
                name="workflow_run_open_deadline",
            ),
            # The console's home: the week's ended runs grouped by revision, day and outcome,
            # from the index alone; and the newest failures without walking the successes.
            models.Index(
                fields=["org", "ended_at"],
                include=["revision", "status", "result"],
                condition=Q(ended_at__isnull=False),
                name="workflow_run_ended",
            ),
            models.Index(
                fields=["org", "-ended_at", "-id"],
                condition=RUN_FAILED,
                name="workflow_run_failed",
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status})"


class NodeRun(TenantModel):
    """The state of one node of the revision within one run (created for every node at start).

    ``node_key`` names the node in the run's revision snapshot, not a draft row: a draft may be
    edited or deleted while the run goes on.
    """

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="node_runs")
    node_key = models.CharField(max_length=64)
    status = models.CharField(
        max_length=10, choices=NodeRunStatus.choices, default=NodeRunStatus.PENDING
    )
    attempt = models.PositiveSmallIntegerField(default=0)
    # A claimed attempt's lease: past it, the reaper takes the attempt as lost (dead worker).
    lease_until = models.DateTimeField(null=True, blank=True)
    # Who holds the claim: the Celery task (message) that claimed the attempt, and the worker
    # node (``-n``) it ran on. The worker's main process takes an attempt back at once when
    # Celery reports its pool process lost, and a worker restarted under the same name takes
    # back its predecessor's attempts, instead of both waiting for the lease.
    claim_task_id = models.CharField(max_length=255, blank=True, default="")
    claim_worker = models.CharField(max_length=255, blank=True, default="")
    # The node's timeout, copied from the revision at the run's start: the claim sets the
    # lease from it in the same statement.
    timeout_s = models.PositiveIntegerField(default=300)
    # When the next attempt may start (retry backoff); the reaper also enqueues due retries.
    not_before = models.DateTimeField(null=True, blank=True)
    label = models.CharField(max_length=64, blank=True, default="")
    # The step's identity toward the outside world ({{ step.idempotency_key }} in templates):
    # the same on every attempt, so a portal can recognise a request re-sent after a crash.
    # Random, not derived from ids: run ids start again after a restore, and a portal must
    # never take a new patient's request for an old one.
    idempotency_key = models.UUIDField(db_default=RandomUUID(), editable=False)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    error_kind = models.CharField(max_length=64, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "node_run"
        ordering = ["run", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "node_key"], name="node_run_unique"),
            models.CheckConstraint(
                condition=Q(status__in=NodeRunStatus.values), name="node_run_status_valid"
            ),
        ]
        indexes = [
            # The reaper's scans: expired leases, and ready retries whose time has come.
            models.Index(
                fields=["lease_until"],
                condition=Q(status=NodeRunStatus.RUNNING),
                name="node_run_leases",
            ),
            models.Index(
                fields=["not_before"],
                condition=Q(status=NodeRunStatus.READY),
                name="node_run_ready",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.node_key} ({self.status})"
