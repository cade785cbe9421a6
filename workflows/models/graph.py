"""Workflow graphs: the editable draft (nodes and transitions) and its frozen revisions."""

import uuid

from django.db import models
from django.db.models import Q

from rcm.db.tenancy import TenantModel


class NodeType(models.TextChoices):
    ENTRY = "entry"
    GENERAL = "general"
    DECISION = "decision"
    OUTCOME = "outcome"


class TriggerRule(models.TextChoices):
    """When a node with several incoming transitions (a join) runs, once all are decided."""

    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    ALL_SUCCESS = "all_success"
    ALL_DONE = "all_done"


class Workflow(TenantModel):
    """An organization's workflow: the draft graph operators edit, and its status.

    ``version`` is the optimistic lock of the draft: every graph change must name the version
    it was based on, and a stale one is refused (409).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_column="workflow_id")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    status = models.ForeignKey(
        "workflows.WorkflowStatusLu",
        on_delete=models.PROTECT,
        db_column="status",
        related_name="+",
        default="draft",
    )
    # Input fields a run must carry (names), besides what the task's requirements add.
    required_data = models.JSONField(default=list, blank=True)
    task_type = models.ForeignKey(
        "workflows.TaskType", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    endpoint = models.ForeignKey(
        "tenants.Endpoint", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    version = models.PositiveIntegerField(default=1)
    draft_updated_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        "tenants.User", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "user_workflow"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["org", "name"], name="user_workflow_org_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class WorkflowNode(TenantModel):
    """A step of a draft graph. ``key`` names it in transitions, templates and runs."""

    id = models.BigAutoField(primary_key=True, db_column="node_id")
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="nodes")
    key = models.SlugField(max_length=64)
    node_type = models.CharField(max_length=10, choices=NodeType.choices)
    # The agent kind a general node works through (web, http, transform, wait, noop, ...).
    kind = models.CharField(max_length=32, blank=True, default="")
    config = models.JSONField(default=dict, blank=True)
    # Temporal-shaped: initial_interval_s, backoff_coefficient, maximum_interval_s,
    # maximum_attempts, non_retryable_error_kinds, jitter (workflows/engine/retry.py).
    retry_policy = models.JSONField(default=dict, blank=True)
    trigger_rule = models.CharField(
        max_length=32, choices=TriggerRule.choices, default=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    )
    timeout_s = models.PositiveIntegerField(null=True, blank=True)
    label_conf = models.JSONField(default=dict, blank=True)
    last_label_at = models.DateTimeField(null=True, blank=True)
    position = models.JSONField(default=dict, blank=True)  # the editor's {"x": .., "y": ..}
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "workflow_node"
        ordering = ["workflow", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "key"], name="workflow_node_key_unique"),
            # The target of workflow_transition's (workflow_id, node_id) foreign keys.
            models.UniqueConstraint(fields=["workflow", "id"], name="workflow_node_workflow_id"),
            models.CheckConstraint(
                condition=Q(node_type__in=NodeType.values), name="workflow_node_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(trigger_rule__in=TriggerRule.values),
                name="workflow_node_trigger_rule_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.key


class WorkflowTransition(TenantModel):
    """An edge: when ``from_node`` finishes with ``action_label``, ``to_node`` may run.

    Several transitions with one label fire together (parallel branches). The database refuses
    an edge whose nodes belong to another workflow (composite foreign keys, migration 0003).
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="transitions")
    from_node = models.ForeignKey(
        WorkflowNode, on_delete=models.CASCADE, db_column="from_node", related_name="outgoing"
    )
    to_node = models.ForeignKey(
        WorkflowNode, on_delete=models.CASCADE, db_column="to_node", related_name="incoming"
    )
    action_label = models.CharField(max_length=64, default="success")
    freq = models.PositiveIntegerField(default=1)  # traversals; grows as runs take the edge
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "workflow_transition"
        ordering = ["workflow", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["from_node", "to_node", "action_label"], name="workflow_transition_unique"
            ),
            models.CheckConstraint(condition=Q(freq__gte=1), name="workflow_transition_freq_ge_1"),
            models.CheckConstraint(
                condition=~Q(from_node=models.F("to_node")), name="workflow_transition_no_self_loop"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_node_id} -[{self.action_label}]-> {self.to_node_id}"


class WorkflowRevision(TenantModel):
    """An immutable snapshot of a published graph; runs execute one and never see later edits.

    ``graph`` = {"required_data": [...], "nodes": [{key, node_type, kind, config, retry_policy,
    trigger_rule, timeout_s}], "transitions": [{from, to, label}]}. A trigger refuses updates.
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="revisions")
    revision_num = models.PositiveIntegerField()
    graph = models.JSONField()
    comment = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        "tenants.User", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "workflow_revision"
        ordering = ["workflow", "-revision_num"]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "revision_num"], name="workflow_revision_num_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id} r{self.revision_num}"
