"""The task catalogue and requirements in the admin: task types and the fields they need on
every portal, what each payer adds or tightens (sys_admin adds a new version, with a reason),
this organization's requirement policies (org admins write them, with a reason) and the
changelog of both, the task signatures the engine counts, and the app's lookups. Writes go
through the requirement services, which check them and keep the changelog.
"""

from contextlib import contextmanager

from django import forms
from django.contrib import admin

from rcm.admin import (
    LookupAdmin,
    PlatformCatalogueAdmin,
    ReadOnlyInline,
    ReadOnlyTenantAdmin,
    TenantAdmin,
    adopt,
    pretty_json,
)
from rcm.context import require_org_id
from rcm.errors import ApplicationError
from workflows.admin import display
from workflows.models import (
    FieldRequirement,
    JobStatusLu,
    OrgRequirementPolicy,
    PayerRequirement,
    RequirementChangelog,
    RequirementTypeLu,
    TaskActionLu,
    TaskDomainLu,
    TaskSignature,
    TaskSignatureSourceLu,
    TaskType,
    WorkflowStatusLu,
)
from workflows.services import requirements

REASON_HELP = "Why this changes: it is kept in the requirement changelog."


@contextmanager
def _reasons_in_message():
    """ServiceAdmin shows a refusal's message; the requirement services name what is wrong
    with each field in the details, which would otherwise be lost."""
    try:
        yield
    except ApplicationError as error:
        raise ApplicationError(
            error.code, display.error_text(error), error.details, status=error.status
        ) from error


class FieldRequirementInline(ReadOnlyInline):
    model = FieldRequirement
    fields = ("field_name", "label", "field_type", "rtype", "channel_type", "is_array")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("rtype", "channel_type")


@admin.register(TaskType)
class TaskTypeAdmin(PlatformCatalogueAdmin):
    resource = "task_type"
    list_display = ("display_name", "domain", "action", "x12_transaction")
    list_select_related = ("domain", "action")
    list_filter = ("domain", "x12_transaction")
    search_fields = ("display_name", "description")
    readonly_fields = ("created_at", "updated_at")
    inlines = (FieldRequirementInline,)


@admin.register(FieldRequirement)
class FieldRequirementAdmin(PlatformCatalogueAdmin):
    """The fields a task needs on every portal (or on one channel type)."""

    resource = "field_requirement"
    list_display = (
        "field_name",
        "task_type",
        "channel_type",
        "label",
        "field_type",
        "rtype",
        "display_order",
    )
    list_select_related = ("task_type", "channel_type", "rtype")
    list_filter = ("task_type", "channel_type", "field_type", "rtype")
    search_fields = ("field_name", "label", "path")
    readonly_fields = ("created_at", "updated_at")


class PayerRequirementForm(forms.ModelForm):
    reason = forms.CharField(widget=forms.Textarea, help_text=REASON_HELP)

    class Meta:
        model = PayerRequirement
        fields = (
            "channel_type",
            "task_type",
            "field_name",
            "label",
            "field_type",
            "rtype",
            "is_array",
            "validation",
            "conditional_on",
            "effective_date",
            "end_date",
        )


@admin.register(PayerRequirement)
class PayerRequirementAdmin(PlatformCatalogueAdmin):
    """What each payer adds or tightens for a task. A version is never changed: sys_admin adds
    the next one, with a reason, and the service writes it to the changelog."""

    resource = "payer_requirement"
    form = PayerRequirementForm
    list_display = (
        "field_name",
        "channel_type",
        "task_type",
        "version",
        "field_type",
        "rtype",
        "effective_date",
        "end_date",
    )
    list_select_related = ("channel_type", "task_type", "rtype")
    list_filter = ("channel_type", "task_type")
    search_fields = ("field_name", "label")

    def get_fields(self, request, obj=None):
        fields = PayerRequirementForm.Meta.fields
        return (*fields, "reason") if obj is None else (*fields, "version", "created_at")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        spec = {key: data[key] for key in requirements.SPEC_KEYS}
        spec["rtype"] = data["rtype"].pk
        with _reasons_in_message():
            row = requirements.payer_requirement_create(
                channel_type=data["channel_type"],
                task_type=data["task_type"],
                field_name=data["field_name"],
                spec=spec,
                effective_date=data["effective_date"],
                end_date=data["end_date"],
                reason=data["reason"],
                actor=request.user,
            )
        adopt(obj, row)


POLICY_FIELDS = (
    "task_type",
    "endpoint",
    "field_name",
    "operation",
    "spec",
    "effective_date",
    "end_date",
    "approved_by",
    "reason",
)


class OrgPolicyForm(forms.ModelForm):
    """The admin builds the fields per request: the endpoint and approver choices are rows of
    the organization in context, which does not exist when this module is imported."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "reason" in self.fields:
            self.fields["reason"].help_text = REASON_HELP
        if self.instance.pk is not None:
            # Every change says why anew; the policy's reason becomes the latest one.
            self.initial["reason"] = ""


@admin.register(OrgRequirementPolicy)
class OrgRequirementPolicyAdmin(TenantAdmin):
    """This organization's add/remove/modify rules; org admins write them, with a reason, and
    the services check them and keep the changelog."""

    resource = "requirement_policy"
    form = OrgPolicyForm
    list_display = (
        "field_name",
        "operation",
        "task_type",
        "endpoint",
        "effective_date",
        "end_date",
        "created_at",
    )
    list_select_related = ("task_type", "endpoint")
    list_filter = ("operation", "task_type")
    search_fields = ("field_name", "reason")

    def get_fields(self, request, obj=None):
        if obj is None:
            return POLICY_FIELDS
        return (*POLICY_FIELDS, "created_by", "created_at", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        # A policy stays on its task: another task's field is another policy.
        return () if obj is None else ("task_type", "created_by", "created_at", "updated_at")

    def has_delete_permission(self, request, obj=None):
        return False  # through the API, which asks for the reason

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        approver = data["approved_by"].pk if data["approved_by"] else None
        with _reasons_in_message():
            if change:
                changes = {
                    name: data[name]
                    for name in form.changed_data
                    if name in requirements.POLICY_EDITABLE
                }
                if "approved_by" in form.changed_data:
                    changes["approved_by_id"] = approver
                policy = requirements.org_policy_update(
                    policy=obj, actor=request.user, reason=data["reason"], **changes
                )
            else:
                policy = requirements.org_policy_create(
                    org_id=require_org_id(),
                    task_type=data["task_type"],
                    endpoint=data["endpoint"],
                    field_name=data["field_name"],
                    operation=data["operation"],
                    spec=data["spec"],
                    effective_date=data["effective_date"],
                    end_date=data["end_date"],
                    approved_by_id=approver,
                    reason=data["reason"],
                    actor=request.user,
                )
        adopt(obj, policy)


@admin.register(RequirementChangelog)
class RequirementChangelogAdmin(ReadOnlyTenantAdmin):
    """Every change to this organization's policies and to the payers' requirements."""

    resource = "requirement_changelog"
    fields = (
        "changed_at",
        "table_name",
        "record_id",
        "change",
        "changed_by",
        "reason",
        "old",
        "new",
    )
    readonly_fields = fields
    list_display = ("changed_at", "table_name", "record_id", "change", "changed_by", "reason")
    # Outer-joined (the column is nullable): a platform row's author is usually a sys_admin
    # whom row-level security hides here; the row must still be listed.
    list_select_related = ("changed_by",)
    list_filter = ("table_name", "change")
    search_fields = ("reason",)

    @admin.display(description="old value")
    def old(self, obj):
        return pretty_json(obj.old_value)

    @admin.display(description="new value")
    def new(self, obj):
        return pretty_json(obj.new_value)


@admin.register(TaskSignature)
class TaskSignatureAdmin(ReadOnlyTenantAdmin):
    """What this organization does on each portal, counted by the engine from its runs."""

    resource = "task_signature"
    list_display = (
        "signature_key",
        "endpoint",
        "domain",
        "action",
        "source",
        "total_runs",
        "success_runs",
        "last_human_run",
    )
    list_select_related = ("endpoint", "domain", "action", "source")
    list_filter = ("domain", "source")
    search_fields = ("signature_key",)


# The app's lookups, with the catalogue most of them describe.
admin.site.register(
    (
        TaskDomainLu,
        TaskActionLu,
        JobStatusLu,
        WorkflowStatusLu,
        RequirementTypeLu,
        TaskSignatureSourceLu,
    ),
    LookupAdmin,
)
