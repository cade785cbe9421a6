"""Workflows in the admin: the task catalogue and requirements, workflows with their draft
graph and the tier mix of their web actions over the last week, the history of what ran
(revisions, runs with their node runs and web actions, traces), and batch jobs with their rows.

Graph edits belong to the API and to the console's editor, where every change names the
draft version it was based on; here operators rename a workflow, describe it and change its
status, through the same services. History is read-only to everyone; a live run or batch may
be cancelled, and a batch's failed rows retried. Roles are the API's: operators author and
run, org admins write requirement policies and read the changelog.
"""

from contextlib import contextmanager
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.db.models import F
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from rcm.admin import (
    LookupAdmin,
    PlatformCatalogueAdmin,
    ReadOnlyInline,
    ReadOnlyTenantAdmin,
    TenantAdmin,
    adopt,
    counted,
    pretty_json,
)
from rcm.context import require_org_id
from rcm.errors import ApplicationError
from rcm.lookups import WorkflowStatus
from workflows.admin_graph import graph_svg
from workflows.admin_tiers import tier_mix_svg
from workflows.models import (
    BatchJob,
    BatchJobItem,
    FieldRequirement,
    ItemStatus,
    JobStatusLu,
    NodeRun,
    OrgRequirementPolicy,
    PayerRequirement,
    RequirementChangelog,
    RequirementTypeLu,
    RunStatus,
    TaskActionLu,
    TaskDomainLu,
    TaskSignature,
    TaskSignatureSourceLu,
    TaskType,
    Workflow,
    WorkflowNode,
    WorkflowRevision,
    WorkflowRun,
    WorkflowStatusLu,
    WorkflowTrace,
    WorkflowTraceEndpoint,
    WorkflowTransition,
)
from workflows.selectors import authoring as authoring_selectors
from workflows.selectors import batch as batch_selectors
from workflows.selectors import runs as run_selectors
from workflows.selectors import traces as trace_selectors
from workflows.services import authoring, batch, requirements, runs

NOT_PUBLISHED = "Not published yet."
NO_RUN_WEB_ACTIONS = "No web actions in this run."
# A week in six-hour buckets: a drift and its repair on the same day show apart.
TIER_MIX_DAYS, TIER_MIX_BUCKETS_PER_DAY = 7, 4
NO_WEB_ACTIONS = f"No web actions in the last {TIER_MIX_DAYS} days."
TIER_NAMES = {1: "memory", 2: "page scored", 3: "model"}
REASON_HELP = "Why this changes: it is kept in the requirement changelog."


def _error_text(error: ApplicationError) -> str:
    """A refusal with its reasons: the problems of a graph, or the errors of each field."""
    details = error.details
    if "problems" in details:
        reasons = [f"{p['node'] or 'graph'}: {p['message']}" for p in details["problems"]]
    else:
        reasons = [
            f"{name}: {' '.join(texts)}"
            for name, texts in details.items()
            if isinstance(texts, list) and all(isinstance(text, str) for text in texts)
        ]
    return f"{error.message} {'; '.join(reasons)}" if reasons else error.message


@contextmanager
def _reasons_in_message():
    """ServiceAdmin shows a refusal's message; the requirement services name what is wrong
    with each field in the details, which would otherwise be lost."""
    try:
        yield
    except ApplicationError as error:
        raise ApplicationError(
            error.code, _error_text(error), error.details, status=error.status
        ) from error


# -- display -------------------------------------------------------------------------------


def _picture(svg, caption: str = ""):
    return format_html('<div style="overflow-x: auto">{}{}</div>', caption, svg)


# -- the task catalogue and requirements ---------------------------------------------------


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


# -- workflows and their graph -------------------------------------------------------------


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
        return _picture(graph_svg(revision.graph), f"Revision {revision.revision_num}")

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
        return _picture(tier_mix_svg(buckets), caption)

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or obj.status_id != WorkflowStatus.ARCHIVED

    def has_delete_permission(self, request, obj=None):
        return False  # archive instead: runs and traces point at a published workflow

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            workflow = authoring.workflow_create(
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
            authoring.workflow_update(workflow=obj, version=data["based_on_version"], **changes)

    @admin.action(description="Publish the selected workflows", permissions=("run",))
    def publish(self, request, queryset):
        self._each(
            request,
            queryset,
            "Published",
            lambda workflow: authoring.workflow_publish(workflow=workflow, created_by=request.user),
        )

    @admin.action(description="Suspend the selected workflows", permissions=("run",))
    def suspend(self, request, queryset):
        self._each(
            request,
            queryset,
            "Suspended",
            lambda workflow: authoring.workflow_suspend(workflow=workflow),
        )

    @admin.action(description="Archive the selected workflows", permissions=("run",))
    def archive(self, request, queryset):
        self._each(
            request,
            queryset,
            "Archived",
            lambda workflow: authoring.workflow_archive(workflow=workflow),
        )

    def _each(self, request, queryset, done: str, service) -> None:
        """The service for each workflow on its own: one refusal does not undo the others."""
        changed = 0
        for workflow in queryset:
            try:
                service(workflow)
            except ApplicationError as error:
                self.message_user(request, f"{workflow.name}: {_error_text(error)}", messages.ERROR)
            else:
                changed += 1
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
        return _picture(graph_svg(obj.graph))

    @admin.display(description="snapshot")
    def snapshot(self, obj):
        return pretty_json(obj.graph)


# -- runs and traces -----------------------------------------------------------------------


def _web_actions_table(run: WorkflowRun):
    """Each browser action of ``run`` in the order taken, with how its target was found."""
    rows = [
        (
            trace.node_key,
            trace.attempt,
            trace.action_detail.get("action", ""),
            trace.action_type,
            trace.action_detail.get("target", ""),
            _tier(trace.tier),
            trace.tier_reason,
            trace.duration_ms,
            _micro_state(trace.action_detail.get("state")),
            "ok" if trace.success else "failed",
        )
        for trace in trace_selectors.web_action_list(run_id=run.pk)
    ]
    if not rows:
        return NO_RUN_WEB_ACTIONS
    # Descriptions and chained reasons may break anywhere rather than widen the page.
    return format_html(
        '<table class="web-actions" style="width: 100%"><thead><tr><th>node</th>'
        "<th>attempt</th><th>action</th><th>tool</th><th>target</th><th>tier</th>"
        "<th>tier reason</th><th>duration</th><th>state used</th><th>success</th></tr></thead>"
        "<tbody>{}</tbody></table>",
        format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            '<td style="overflow-wrap: anywhere">{}</td><td>{}</td>'
            '<td style="overflow-wrap: anywhere">{}</td>'
            '<td style="white-space: nowrap">{} ms</td>'
            '<td style="white-space: nowrap">{}</td><td>{}</td></tr>',
            rows,
        ),
    )


def _tier(tier: int | None) -> str:
    return f"{tier} ({TIER_NAMES[tier]})" if tier in TIER_NAMES else "—"


def _micro_state(state_id):
    """The micro-state an action's target came from, linked to its page when the memory app's
    admin is installed (asked of the URL names: workflows sits below memory)."""
    if state_id is None:
        return "—"
    try:
        url = reverse("admin:memory_microstate_change", args=(state_id,))
    except NoReverseMatch:
        return f"state {state_id}"
    return format_html('<a href="{}">state {}</a>', url, state_id)


class NodeRunInline(ReadOnlyInline):
    model = NodeRun
    fields = (
        "node_key",
        "status",
        "attempt",
        "label",
        "error_kind",
        "error",
        "started_at",
        "ended_at",
        "duration",
    )

    @admin.display(description="duration")
    def duration(self, obj):
        """From the first attempt's start to the last one's end (retries and their waits)."""
        if obj.started_at is None or obj.ended_at is None:
            return "—"
        return _duration((obj.ended_at - obj.started_at).total_seconds())


class RunTraceInline(ReadOnlyInline):
    """Every step the run took, in the order they were recorded (then by id: the steps of
    one attempt are written together, in the order taken)."""

    model = WorkflowTrace
    fk_name = "run"
    verbose_name = "trace"
    verbose_name_plural = "traces, in time order"
    fields = (
        "created_at",
        "node_key",
        "attempt",
        "action_type",
        "success",
        "duration_ms",
        "tier",
        "error_detail",
    )

    def get_queryset(self, request):
        # The model's prompt and answer are the largest columns of a row; none is shown here.
        queryset = super().get_queryset(request).defer("llm_prompt", "llm_response")
        return queryset.order_by("created_at", "id")


def _duration(seconds: float) -> str:
    """A duration as people read it: 850 ms, 12.4 s, 3 min 05 s, 2 h 10 min."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@admin.register(WorkflowRun)
class WorkflowRunAdmin(ReadOnlyTenantAdmin):
    """Runs of a revision, with the state of each node and the web actions taken (shown below
    the fields by admin/workflows/workflowrun/change_form.html, across the page: ten columns
    do not fit beside a field's label); an operator may cancel a live run."""

    resource = "run"
    fields = (
        "workflow",
        "revision_link",
        "status",
        "result",
        "outcome",
        "error",
        "external_id",
        "batch_link",
        "cancel_requested",
        "created_by",
        "created_at",
        "started_at",
        "ended_at",
        "deadline_at",
        "duration_ms",
        "picture",
        "trace_link",
        "input_data",
    )
    readonly_fields = fields
    list_display = (
        "id",
        "workflow",
        "revision_number",
        "status",
        "result",
        "outcome",
        "created_at",
        "duration_ms",
    )
    list_select_related = ("workflow",)
    list_filter = ("status", "workflow")
    search_fields = ("external_id",)
    actions = ("cancel",)
    inlines = (NodeRunInline, RunTraceInline)

    def get_queryset(self, request):
        # The number, not the revision: select_related would load each run's whole snapshot.
        return super().get_queryset(request).annotate(revision_number=F("revision__revision_num"))

    @admin.display(description="revision", ordering="revision_number")
    def revision_number(self, obj):
        return obj.revision_number

    @admin.display(description="revision")
    def revision_link(self, obj):
        url = reverse("admin:workflows_workflowrevision_change", args=(obj.revision_id,))
        return format_html('<a href="{}">Revision {}</a>', url, obj.revision_number)

    @admin.display(description="graph")
    def picture(self, obj):
        statuses = dict(obj.node_runs.values_list("node_key", "status"))
        taken = run_selectors.run_edges_taken(run=obj)
        return _picture(graph_svg(obj.revision.graph, statuses=statuses, taken=taken))

    @admin.display(description="traces")
    def trace_link(self, obj):
        url = reverse("admin:workflows_workflowtrace_changelist")
        query = urlencode({"run__id__exact": obj.pk})
        return format_html('<a href="{}?{}">Traces of this run</a>', url, query)

    @admin.display(description="batch")
    def batch_link(self, obj):
        """The row of a batch job this run is, linked both ways round; '-' for a run
        started on its own."""
        item = obj.batch_job_item
        if item is None:
            return "-"
        return format_html(
            '<a href="{}">row {}</a> of <a href="{}">batch job {}</a>',
            reverse("admin:workflows_batchjobitem_change", args=(item.pk,)),
            item.row_number,
            reverse("admin:workflows_batchjob_change", args=(item.batch_job_id,)),
            item.batch_job_id,
        )

    @admin.display(description="input")
    def input_data(self, obj):
        return pretty_json(obj.input)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["web_actions"] = _web_actions_table(obj)
            # The console's button (asked of the URL names: workflows sits below it).
            if self.has_run_permission(request):
                context["rerun_url"] = reverse("console:run_rerun", args=(obj.pk,))
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description="Cancel the selected runs", permissions=("run",))
    def cancel(self, request, queryset):
        cancelled = 0
        for run in queryset.filter(status__in=[RunStatus.PENDING, RunStatus.RUNNING]):
            try:
                runs.run_cancel(run=run)
            except ApplicationError as error:  # it finished in the meantime
                self.message_user(request, f"Run {run.pk}: {error.message}", messages.WARNING)
            else:
                cancelled += 1
        self.message_user(request, f"Cancelled {counted(cancelled, 'run')}.", messages.SUCCESS)


class TraceEndpointInline(ReadOnlyInline):
    model = WorkflowTraceEndpoint
    fields = ("endpoint",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("endpoint")


@admin.register(WorkflowTrace)
class WorkflowTraceAdmin(ReadOnlyTenantAdmin):
    """Each step taken, how it was decided and how long it took."""

    resource = "trace"
    list_display = (
        "created_at",
        "workflow",
        "run_link",
        "node_key",
        "attempt",
        "action_type",
        "success",
        "duration_ms",
        "tier",
    )
    # Not the run: that would load each run's input and context for one number.
    list_select_related = ("workflow",)
    list_filter = ("success", "action_type", "tier")
    date_hierarchy = "created_at"
    inlines = (TraceEndpointInline,)

    @admin.display(description="run", ordering="run_id")
    def run_link(self, obj):
        if obj.run_id is None:
            return None
        url = reverse("admin:workflows_workflowrun_change", args=(obj.run_id,))
        return format_html('<a href="{}">{}</a>', url, obj.run_id)


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


# -- batch jobs ----------------------------------------------------------------------------

# The bar's segments, in order: each a share of the job's rows (processed rows fill the bar).
BAR_SEGMENTS = (
    ("successful_rows", "successful", "#43a047"),  # green
    ("failed_rows", "failed", "#e53935"),  # red
    ("cancelled_rows", "cancelled", "#9e9e9e"),  # grey
)
# An item's status -> the job's counter of it, for the links to the job's items.
ITEM_COUNTERS = {
    ItemStatus.PENDING: "pending_rows",
    ItemStatus.RUNNING: "running_rows",
    ItemStatus.COMPLETED: "successful_rows",
    ItemStatus.FAILED: "failed_rows",
    ItemStatus.CANCELLED: "cancelled_rows",
}


def _progress_bar(job: BatchJob):
    """Processed rows as the filled share of a bar, green for the successful, red for the
    failed, grey for the cancelled; from the job's counters alone, so a list costs no query
    per job."""
    total = max(job.total_rows, 1)
    segments = format_html_join(
        "",
        '<span style="width: {}%; background: {}"></span>',
        (
            (f"{100 * getattr(job, counter) / total:.2f}", colour)
            for counter, _, colour in BAR_SEGMENTS
        ),
    )
    title = ", ".join(f"{getattr(job, counter)} {name}" for counter, name, _ in BAR_SEGMENTS)
    percent = batch_selectors.batch_job_progress(job=job).percent_done
    return format_html(
        '<div class="batch-progress" title="{} of {} rows" style="display: flex; '
        'align-items: center; gap: 6px; white-space: nowrap">'
        '<span style="display: flex; width: 120px; height: 10px; background: #e0e0e0; '
        'border-radius: 2px; overflow: hidden">{}</span>{}% ({}/{})</div>',
        title,
        job.total_rows,
        segments,
        percent,
        job.processed_rows,
        job.total_rows,
    )


@admin.register(BatchJob)
class BatchJobAdmin(ReadOnlyTenantAdmin):
    """Uploaded batches with their progress. Rows change only through the feeder and the runs;
    operators may cancel a batch or retry its failed rows, through the API's services."""

    resource = "batch_job"
    list_display = (
        "id",
        "console_link",
        "workflow",
        "file_name",
        "progress",
        "status",
        "total_rows",
        "successful_rows",
        "failed_rows",
        "cancelled_rows",
        "created_at",
    )
    list_display_links = ("id", "file_name")
    list_select_related = ("workflow", "status")
    list_filter = ("status",)
    search_fields = ("file_name", "prompt")
    actions = ("cancel", "retry_failed")
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "console_link",
                    "workflow",
                    "revision_link",
                    "status",
                    "prompt",
                    "file_name",
                    "on_invalid",
                    "max_concurrency",
                    "task_type",
                    "endpoint",
                    "cancel_requested",
                )
            },
        ),
        (
            "Progress",
            {
                "fields": (
                    "progress",
                    "total_rows",
                    "pending_rows",
                    "running_rows",
                    "successful_rows",
                    "failed_rows",
                    "cancelled_rows",
                    "processed_rows",
                    "rows_per_second",
                    "eta",
                    "estimated_completion_at",
                )
            },
        ),
        ("Rows", {"fields": ("item_links", "results")}),
        (
            "History",
            {"fields": ("created_by", "created_at", "started_at", "last_fed_at", "completed_at")},
        ),
    ]
    readonly_fields = tuple(name for _, options in fieldsets for name in options["fields"])

    def get_queryset(self, request):
        # The number, not the revision: select_related would load the whole snapshot.
        return super().get_queryset(request).annotate(revision_number=F("revision__revision_num"))

    @admin.display(description="progress")
    def progress(self, obj):
        return _progress_bar(obj)

    @admin.display(description="revision")
    def revision_link(self, obj):
        url = reverse("admin:workflows_workflowrevision_change", args=(obj.revision_id,))
        return format_html('<a href="{}">Revision {}</a>', url, obj.revision_number)

    @admin.display(description="rows per second")
    def rows_per_second(self, obj):
        return batch_selectors.batch_job_progress(job=obj).rows_per_second

    @admin.display(description="seconds to go")
    def eta(self, obj):
        return batch_selectors.batch_job_progress(job=obj).eta_seconds

    @admin.display(description="estimated completion")
    def estimated_completion_at(self, obj):
        return batch_selectors.batch_job_progress(job=obj).estimated_completion_at

    @admin.display(description="items")
    def item_links(self, obj):
        """The job's items, all of them and by status, each link with its count."""
        url = reverse("admin:workflows_batchjobitem_changelist")
        links = [("all", urlencode({"batch_job__id__exact": obj.pk}), obj.total_rows)]
        links += [
            (status, urlencode({"batch_job__id__exact": obj.pk, "status__exact": status}), count)
            for status, counter in ITEM_COUNTERS.items()
            if (count := getattr(obj, counter))
        ]
        return format_html_join(
            " · ",
            '<a href="{}?{}">{} ({})</a>',
            ((url, query, name, count) for name, query, count in links),
        )

    @admin.display(description="console")
    def console_link(self, obj):
        """The batch's page in the console: its progress as it runs, its rows searched, its
        downloads and buttons."""
        return format_html(
            '<a href="{}">open in the console</a>', reverse("console:batch", args=(obj.pk,))
        )

    @admin.display(description="results")
    def results(self, obj):
        # Served by the console with the session (the same bytes as the API's results.csv).
        return format_html(
            '<a href="{}" download>Download results (CSV)</a> · the API: GET <code>{}</code>',
            reverse("console:batch_results", args=(obj.pk,)),
            reverse("batch-job-results", args=(obj.pk,)),
        )

    @admin.action(description="Cancel the selected batch jobs", permissions=("run",))
    def cancel(self, request, queryset):
        cancelled = 0
        for job in queryset.filter(completed_at__isnull=True):
            try:
                batch.batch_job_cancel(job=job)
            except ApplicationError as error:  # it finished in the meantime
                self.message_user(request, f"Batch job {job.pk}: {error.message}", messages.WARNING)
            else:
                cancelled += 1
        cancelled_jobs = counted(cancelled, "batch job")
        self.message_user(request, f"Cancelled {cancelled_jobs}.", messages.SUCCESS)

    @admin.action(
        description="Retry the failed rows of the selected batch jobs", permissions=("run",)
    )
    def retry_failed(self, request, queryset):
        retried = 0
        for job in queryset:
            try:
                batch.batch_job_retry_failed(job=job)
            except ApplicationError as error:  # cancelled, or no row failed in a run
                self.message_user(request, f"Batch job {job.pk}: {error.message}", messages.WARNING)
            else:
                retried += 1
        if retried:
            self.message_user(
                request,
                f"Retrying the failed rows of {counted(retried, 'batch job')}.",
                messages.SUCCESS,
            )


@admin.register(BatchJobItem)
class BatchJobItemAdmin(ReadOnlyTenantAdmin):
    """The rows of batch jobs: a job's page links here filtered to its own rows."""

    resource = "batch_job_item"
    fields = (
        "job_link",
        "row_number",
        "status",
        "attempts",
        "error_message",
        "run_link",
        "input",
        "output",
        "created_at",
        "updated_at",
        "completed_at",
    )
    readonly_fields = fields
    list_display = (
        "row_number",
        "job_link",
        "status",
        "attempts",
        "error_message",
        "run_link",
        "completed_at",
    )
    list_filter = ("status",)
    # Exact: row 12 is row 12, not 112 or 1200.
    search_fields = ("row_number__exact",)
    search_help_text = "Row number (1 is the first row under the file's header)."

    @admin.display(description="batch job", ordering="batch_job_id")
    def job_link(self, obj):
        url = reverse("admin:workflows_batchjob_change", args=(obj.batch_job_id,))
        return format_html('<a href="{}">{}</a>', url, obj.batch_job_id)

    @admin.display(description="run", ordering="run_id")
    def run_link(self, obj):
        if obj.run_id is None:
            return None
        url = reverse("admin:workflows_workflowrun_change", args=(obj.run_id,))
        return format_html('<a href="{}">{}</a>', url, obj.run_id)

    @admin.display(description="input")
    def input(self, obj):
        return pretty_json(obj.input_data)

    @admin.display(description="output")
    def output(self, obj):
        return pretty_json(obj.output_data)
