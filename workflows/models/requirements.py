"""Which input fields a task needs: the platform's field requirements, what each payer adds or
tightens, and what each organization adds, removes or modifies (workflows/requirements.py
resolves the three into the effective set for one organization, portal, task and date)."""

from django.db import models
from django.db.models import Q

from rcm.db.tenancy import TenantManager, TenantModel


class FieldType(models.TextChoices):
    TEXT = "text"
    DATE = "date"
    SELECT = "select"
    NUMBER = "number"
    BOOLEAN = "boolean"


class PolicyOperation(models.TextChoices):
    ADD = "add"
    REMOVE = "remove"
    MODIFY = "modify"


class FieldSpec(models.Model):
    """The columns every layer uses to describe a field (abstract)."""

    field_name = models.CharField(max_length=100)
    label = models.CharField(max_length=200, blank=True, default="")
    field_type = models.CharField(max_length=10, choices=FieldType.choices, default="text")
    rtype = models.ForeignKey(
        "workflows.RequirementTypeLu",
        on_delete=models.PROTECT,
        db_column="rtype",
        related_name="+",
        default="required",
    )
    is_array = models.BooleanField(default=False)
    # pattern, min_length, max_length, enum, min, max, date_format
    validation = models.JSONField(default=dict, blank=True)
    # {"field": "<name>", "equals": <value>} or {"field": ..., "in": [...]}, or
    # {"field": ..., "present": true}: the field applies only when that holds.
    conditional_on = models.JSONField(null=True, blank=True)

    class Meta:
        abstract = True


class FieldRequirement(FieldSpec):
    """A field a task type needs on every portal, or on one channel type only."""

    # V8's name for this table's column (payer_requirement keeps the plain one).
    validation = models.JSONField(default=dict, blank=True, db_column="validation_rules")
    task_type = models.ForeignKey(
        "workflows.TaskType", on_delete=models.CASCADE, related_name="field_requirements"
    )
    channel_type = models.ForeignKey(
        "tenants.ChannelType", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # Hierarchy of nested inputs: "subscriber.dob" has depth 1 under "subscriber".
    path = models.CharField(max_length=300, blank=True, default="")
    depth = models.PositiveSmallIntegerField(default=0)
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    display_order = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "field_requirement"
        ordering = ["task_type", "display_order", "field_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["task_type", "channel_type", "field_name"],
                name="field_requirement_unique",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=Q(field_type__in=FieldType.values), name="field_requirement_type_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_type_id}:{self.field_name}"


class PayerRequirement(FieldSpec):
    """What one payer (a channel type) adds or tightens for a task, from a date, versioned."""

    channel_type = models.ForeignKey(
        "tenants.ChannelType", on_delete=models.CASCADE, related_name="payer_requirements"
    )
    task_type = models.ForeignKey(
        "workflows.TaskType", on_delete=models.CASCADE, related_name="payer_requirements"
    )
    effective_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "payer_requirement"
        ordering = ["channel_type", "task_type", "field_name", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel_type", "task_type", "field_name", "version"],
                name="payer_requirement_version_unique",
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gt=models.F("effective_date")),
                name="payer_requirement_dates_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel_type_id}:{self.field_name} v{self.version}"


class OrgRequirementPolicy(TenantModel):
    """An organization's own rule for a field: add it, remove it, or modify it, from a date.

    ``spec`` holds the field's description for add and the changed attributes for modify
    (label, field_type, rtype, is_array, validation, conditional_on).
    """

    task_type = models.ForeignKey("workflows.TaskType", on_delete=models.CASCADE, related_name="+")
    # Narrowed to one portal of the organization (hence one payer), or for all of them.
    endpoint = models.ForeignKey(
        "tenants.Endpoint", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    field_name = models.CharField(max_length=100)
    operation = models.CharField(max_length=10, choices=PolicyOperation.choices)
    spec = models.JSONField(default=dict, blank=True)
    effective_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    reason = models.TextField()
    approved_by = models.ForeignKey(
        "tenants.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        "tenants.User", on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "org_requirement_policy"
        verbose_name_plural = "org requirement policies"
        ordering = ["effective_date", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(operation__in=PolicyOperation.values),
                name="org_requirement_policy_operation_valid",
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gt=models.F("effective_date")),
                name="org_requirement_policy_dates_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.field_name} from {self.effective_date}"


class ChangelogManager(TenantManager):
    """The organization's own changes and the platform's (org NULL), as the RLS policy says."""

    def scope(self, queryset, org_id):
        return queryset.filter(Q(org_id=org_id) | Q(org_id__isnull=True))


class RequirementChangelog(models.Model):
    """One change to a requirement (payer or organization): who, when, old, new and why.

    Written by the services in the same transaction as the change. ``org_id`` is NULL for the
    platform's own catalogue changes (payer requirements), which every organization may read.
    """

    org = models.ForeignKey(
        "tenants.Organization",
        on_delete=models.CASCADE,
        db_column="org_id",
        null=True,
        related_name="+",
    )
    table_name = models.CharField(max_length=64)
    record_id = models.BigIntegerField()
    change = models.CharField(max_length=10)  # created | updated | deleted
    old_value = models.JSONField(null=True)
    new_value = models.JSONField(null=True)
    reason = models.TextField(blank=True, default="")
    changed_by = models.ForeignKey(
        "tenants.User", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)

    objects = ChangelogManager()

    class Meta:
        verbose_name = "requirement change"
        verbose_name_plural = "requirement changes"
        db_table = "requirement_changelog"
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["table_name", "record_id"], name="req_changelog_record")]

    def __str__(self) -> str:
        return f"{self.change} {self.table_name}#{self.record_id}"
