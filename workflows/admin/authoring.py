"""Workflows in the admin, with their draft graph and the tier mix of their web actions over the
last week, and the revisions they published.

Graph edits belong to the API and to the console's editor, where every change names the
draft version it was based on; here operators rename a workflow, describe it and change its
status, through the same services. Revisions are history, read-only to everyone.
"""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html

from rcm.admin import (
    ReadOnlyInline,
    ReadOnlyTenantAdmin,
    TenantAdmin,
    adopt,
    counted,
    pretty_json,
    rows_act,
)
from rcm.context import require_org_id
from rcm.lookups import WorkflowStatus
from workflows.admin import display
from workflows.drawing.graph import graph_svg
from workflows.drawing.tiers import tier_mix_svg
from workflows.models import Workflow, WorkflowNode, WorkflowRevision, WorkflowTransition
from workflows.selectors import authoring as authoring_selectors
from workflows.selectors import traces as trace_selectors
from workflows.services import authoring as authoring_services

NOT_PUBLISHED = "Not published yet."
# A week in six-hour buckets: a drift and its repair on the same day show apart.
TIER_MIX_DAYS, TIER_MIX_BUCKETS_PER_DAY = 7, 4
NO_WEB_ACTIONS = f"No web actions in the last {TIER_MIX_DAYS} days."


class WorkflowNodeInline(ReadOnlyInline):
    model = WorkflowNode
    fields = ("key", "node_type", "kind", "trigger_rule", "timeout_s", "config", "retry_policy")


class WorkflowTransitionInline(ReadOnlyInline):
    model = WorkflowTransition
    fields = ("from_node", "action_label", "to_node", "freq")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("from_node", "to_node")


class WorkflowForm(forms.ModelForm):
    """Name and description. ``based_on_version`` is the draft version the page was read at,
    so that an edit of a page gone stale is refused, as the API refuses it."""

    based_on_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Workflow
        fields = ("name", "description")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["based_on_version"].initial = self.instance.version


@admin.register(Workflow)
class WorkflowAdmin(TenantAdmin):
    """Workflows with their draft graph (read-only here: the API and the console's editor edit
    it under its version check) and the picture of their latest revision. Operators create,
    rename and describe them, and publish, suspend or archive them with the actions."""

    resource = "workflow"
    form = WorkflowForm
    list_display = (
        "name",
        "status",
        "version",
        "latest_revision",
        "published_at",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("name",)
    actions = ("publish", "suspend", "archive")
    inlines = (WorkflowNodeInline, WorkflowTransitionInline)
    readonly_fields = (
        "status",
        "version",
        "required_data",
        "task_type",
        "endpoint",
        "published_at",
        "created_by",
        "created_at",
        "updated_at",
        "published_graph",
        "tier_mix",
        "editor",
    )

    def get_queryset(self, request):
        # Here, not in list_select_related: the changelist ignores that for a queryset that
        # already selects related rows, as the selector's does (the task type).
        return authoring_selectors.workflow_list().select_related("status")

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ("name", "description")})]
        version = ("based_on_version",) if self.has_change_permission(request, obj) else ()
        return [
            (None, {"fields": ("name", "description", "status", "version", *version)}),
            ("Draft", {"fields": ("editor", "required_data", "task_type", "endpoint")}),
            ("Latest revision", {"fields": ("published_graph",)}),
            (f"Tiers, last {TIER_MIX_DAYS} days", {"fields": ("tier_mix",)}),
            ("History", {"fields": ("published_at", "created_by", "created_at", "updated_at")}),
        ]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else ()

    @admin.display(description="latest revision", ordering="latest_revision_num")
    def latest_revision(self, obj):
        return obj.latest_revision_num

    @admin.display(description="editor")
    def editor(self, obj):
        """The console's editor of this draft, asked of the URL names (the console sits above
        this app)."""
        try:
            url = reverse("console:workflow_editor", args=(obj.pk,))
        except NoReverseMatch:
            return "—"
        return format_html('<a href="{}">Open the graph in the editor</a>', url)

    @admin.display(description="graph")
    def published_graph(self, obj):
        revision = (
            authoring_selectors.workflow_revision_list(workflow=obj)
            .order_by("-revision_num")
            .first()
        )
        if revision is None:
            return NOT_PUBLISHED
        return display.picture(graph_svg(revision.graph), f"Revision {revision.revision_num}")

    @admin.display(description="tier mix")
    def tier_mix(self, obj):
        """How the web actions' targets were found over the last week, up to the end of today."""
        today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        until = today + timedelta(days=1)
        buckets = trace_selectors.tier_mix(
            workflow_id=obj.pk,
            since=until - timedelta(days=TIER_MIX_DAYS),
            until=until,
            buckets=TIER_MIX_DAYS * TIER_MIX_BUCKETS_PER_DAY,
        )
        total = sum(bucket.total for bucket in buckets)
        if not total:
            return NO_WEB_ACTIONS
        from_memory = sum(bucket.tier_1 for bucket in buckets) / total
        caption = format_html(
            "<p>{} web actions, {} of them from memory (tier 1).</p>", total, f"{from_memory:.0%}"
        )
        return display.picture(tier_mix_svg(buckets), caption)

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or obj.status_id != WorkflowStatus.ARCHIVED

    def has_delete_permission(self, request, obj=None):
        return False  # archive instead: runs and traces point at a published workflow

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            workflow = authoring_services.workflow_create(
                org_id=require_org_id(),
                created_by=request.user,
                name=data["name"],
                description=data["description"],
            )
            adopt(obj, workflow)
            return
        changes = {
            name: data[name] for name in form.changed_data if name in ("name", "description")
        }
        if changes:
            authoring_services.workflow_update(
                workflow=obj, version=data["based_on_version"], **changes
            )

    @admin.action(description="Publish the selected workflows", permissions=("run",))
    def publish(self, request, queryset):
        self._each(
            request,
            queryset,
            "Published",
            lambda workflow: authoring_services.workflow_publish(
                workflow=workflow, created_by=request.user
            ),
        )

    @admin.action(description="Suspend the selected workflows", permissions=("run",))
    def suspend(self, request, queryset):
        self._each(
            request,
            queryset,
            "Suspended",
            lambda workflow: authoring_services.workflow_suspend(workflow=workflow),
        )

    @admin.action(description="Archive the selected workflows", permissions=("run",))
    def archive(self, request, queryset):
        self._each(
            request,
            queryset,
            "Archived",
            lambda workflow: authoring_services.workflow_archive(workflow=workflow),
        )

    def _each(self, request, queryset, done: str, service) -> None:
        """The service for each workflow on its own: one refusal does not undo the others."""
        changed = rows_act(
            self,
            request,
            queryset,
            service,
            lambda workflow, error: f"{workflow.name}: {display.error_text(error)}",
            messages.ERROR,
        )
        if changed:
            self.message_user(request, f"{done} {counted(changed, 'workflow')}.", messages.SUCCESS)


@admin.register(WorkflowRevision)
class WorkflowRevisionAdmin(ReadOnlyTenantAdmin):
    """The frozen graphs that were published; runs execute them."""

    resource = "workflow_revision"
    fields = (
        "workflow",
        "revision_num",
        "comment",
        "created_by",
        "created_at",
        "picture",
        "snapshot",
    )
    readonly_fields = fields
    list_display = ("workflow", "revision_num", "comment", "created_by", "created_at")
    # created_by is nullable, so outer-joined: a sys_admin homed elsewhere who published here
    # is hidden by row-level security, and the revision must still be listed.
    list_select_related = ("workflow", "created_by")
    list_filter = ("workflow",)

    @admin.display(description="graph")
    def picture(self, obj):
        return display.picture(graph_svg(obj.graph))

    @admin.display(description="snapshot")
    def snapshot(self, obj):
        return pretty_json(obj.graph)
