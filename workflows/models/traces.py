"""Traces: one row per node attempt (and, from the web agent, per action), V8 columns."""

from django.db import models
from django.db.models import F, Q
from django.db.models.fields.json import KeyTransform

from rcm.db.tenancy import TenantModel

# The web kind's traces: one per browser action, named web.<tool> (webactions/kinds.py).
WEB_ACTION_PREFIX = "web."
# An action whose target no tier found (its reason says "miss:", after what tier 1 found).
UNRESOLVED = Q(tier__isnull=True, success=False, tier_reason__contains="miss:")
# The web actions a tier mix counts: a target found by a tier, or not found at all. The
# index workflow_trace_tiered is partial on this very condition, and the tier mix filters by
# it, so that the planner sees the query imply the index's predicate.
TIERED = Q(action_type__startswith=WEB_ACTION_PREFIX) & (Q(tier__isnull=False) | UNRESOLVED)


class WorkflowTrace(TenantModel):
    """One step taken: what was done, whether it worked, how long it took, and how it was
    decided (tier 1 memory, 2 repaired, 3 model) with the model's prompt and answer if any."""

    id = models.BigAutoField(primary_key=True, db_column="trace_id")
    workflow = models.ForeignKey(
        "workflows.Workflow", on_delete=models.CASCADE, null=True, related_name="+"
    )
    batch_job_item = models.ForeignKey(
        "workflows.BatchJobItem",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    run = models.ForeignKey(
        "workflows.WorkflowRun", on_delete=models.CASCADE, null=True, related_name="traces"
    )
    node_run = models.ForeignKey(
        "workflows.NodeRun", on_delete=models.CASCADE, null=True, related_name="traces"
    )
    node_key = models.CharField(max_length=64, blank=True, default="")
    attempt = models.PositiveSmallIntegerField(default=1)
    action_type = models.CharField(max_length=64)
    action_detail = models.JSONField(default=dict, blank=True)
    success = models.BooleanField()
    duration_ms = models.PositiveIntegerField(default=0)
    error_detail = models.TextField(blank=True, default="")
    llm_prompt = models.TextField(blank=True, default="")
    llm_response = models.TextField(blank=True, default="")
    llm_model = models.CharField(max_length=200, blank=True, default="")
    llm_tokens_used = models.PositiveIntegerField(null=True, blank=True)
    tier = models.PositiveSmallIntegerField(null=True, blank=True)
    tier_reason = models.TextField(blank=True, default="")
    user = models.ForeignKey(
        "tenants.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    session_id = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "workflow_trace"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(tier__isnull=True) | Q(tier__in=[1, 2, 3]),
                name="workflow_trace_tier_valid",
            )
        ]
        indexes = [
            models.Index(fields=["org", "-created_at", "-id"], name="workflow_trace_recent"),
            models.Index(fields=["run", "-created_at"], name="workflow_trace_run"),
            # The organization's tier mix (the console's home): counted from this index alone.
            models.Index(
                fields=["org", "created_at"],
                include=["tier", "workflow"],
                condition=TIERED,
                name="workflow_trace_tiered",
            ),
            # A micro-state's outcomes over time (the memory browser's success curve).
            models.Index(
                F("org"),
                KeyTransform("state", "action_detail"),
                F("created_at"),
                condition=Q(action_type__startswith=WEB_ACTION_PREFIX),
                name="workflow_trace_state",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action_type} ({'ok' if self.success else 'failed'})"


class WorkflowTraceEndpoint(TenantModel):
    """An endpoint a trace touched, for steps that touched several portals."""

    trace = models.ForeignKey(WorkflowTrace, on_delete=models.CASCADE, related_name="endpoints")
    endpoint = models.ForeignKey("tenants.Endpoint", on_delete=models.CASCADE, related_name="+")

    class Meta:
        db_table = "workflow_trace_endpoint"
        constraints = [
            models.UniqueConstraint(
                fields=["trace", "endpoint"], name="workflow_trace_endpoint_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.trace_id} -> {self.endpoint_id}"
