"""What ran, in the admin: runs with their node runs, web actions and traces, and every trace.
History is read-only to everyone; an operator may cancel a live run.
"""

from django.contrib import admin, messages
from django.db.models import F
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from rcm.admin import (
    ReadOnlyInline,
    ReadOnlyTenantAdmin,
    counted,
    pretty_json,
    refusal_by_pk,
    rows_act,
)
from workflows.admin import display
from workflows.drawing.graph import graph_svg
from workflows.models import NodeRun, RunStatus, WorkflowRun, WorkflowTrace, WorkflowTraceEndpoint
from workflows.selectors import runs as run_selectors
from workflows.selectors import traces as trace_selectors
from workflows.services import runs as run_services

NO_RUN_WEB_ACTIONS = "No web actions in this run."
TIER_NAMES = {1: "memory", 2: "page scored", 3: "model"}
# What a trace's step did, as the run's trace inline and the trace list both show it.
TRACE_STEP_COLUMNS = ("node_key", "attempt", "action_type", "success", "duration_ms", "tier")


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
    fields = ("created_at", *TRACE_STEP_COLUMNS, "error_detail")

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
class WorkflowRunAdmin(display.RevisionLinked, ReadOnlyTenantAdmin):
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

    @admin.display(description="graph")
    def picture(self, obj):
        statuses = dict(obj.node_runs.values_list("node_key", "status"))
        taken = run_selectors.run_edges_taken(run=obj)
        return display.picture(graph_svg(obj.revision.graph, statuses=statuses, taken=taken))

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
        cancelled = rows_act(
            self,
            request,
            queryset.filter(status__in=[RunStatus.PENDING, RunStatus.RUNNING]),
            lambda run: run_services.run_cancel(run=run),
            refusal_by_pk("Run"),
        )
        self.message_user(request, f"Cancelled {counted(cancelled, 'run')}.", messages.SUCCESS)


class TraceEndpointInline(ReadOnlyInline):
    model = WorkflowTraceEndpoint
    fields = ("endpoint",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("endpoint")


@admin.register(WorkflowTrace)
class WorkflowTraceAdmin(display.RunLinked, ReadOnlyTenantAdmin):
    """Each step taken, how it was decided and how long it took."""

    resource = "trace"
    list_display = ("created_at", "workflow", "run_link", *TRACE_STEP_COLUMNS)
    # Not the run: that would load each run's input and context for one number.
    list_select_related = ("workflow",)
    list_filter = ("success", "action_type", "tier")
    date_hierarchy = "created_at"
    inlines = (TraceEndpointInline,)
