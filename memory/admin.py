"""The memory in the admin: an organization's micro-states, how well each has done, and
retiring or reviving them. States are stored by the agent and the API, never typed in here."""

from django.conf import settings
from django.contrib import admin, messages
from django.utils.html import format_html

from memory import services
from memory.models import MicroState
from rcm.admin import ReadOnlyTenantAdmin, counted, pretty_json


def _success_bar(state: MicroState):
    """The success average as a bar: green above the retirement mark, red below it."""
    colour = "#2e7d32" if state.success_ema >= settings.MEMORY_RETIRE_BELOW else "#c62828"
    return format_html(
        '<div title="{} successes, {} failures" style="display: flex; align-items: center; '
        'gap: 6px; white-space: nowrap"><span style="display: flex; width: 80px; height: 10px; '
        'background: #e0e0e0; border-radius: 2px; overflow: hidden"><span style="width: {}%; '
        'background: {}"></span></span>{}</div>',
        state.success_count,
        state.failure_count,
        f"{100 * state.success_ema:.1f}",
        colour,
        f"{state.success_ema:.2f}",
    )


@admin.register(MicroState)
class MicroStateAdmin(ReadOnlyTenantAdmin):
    resource = "micro_state"
    list_display = (
        "id",
        "label",
        "category",
        "url_pattern",
        "workflow",
        "success",
        "is_retired",
        "aliased_to_id",
        "last_hit_at",
    )
    list_filter = ("is_retired", "is_dynamic", "category", "embedder")
    search_fields = ("label", "url_pattern", "category")
    list_select_related = ("workflow",)
    fields = (
        "label",
        "category",
        "url_pattern",
        "workflow",
        "node",
        "step_key",
        "endpoint",
        "success",
        "success_count",
        "failure_count",
        "is_retired",
        "aliased_to_id",
        "is_dynamic",
        "embedder",
        "embedder_dimension",
        "action",
        "dom_snapshot",
        "last_hit_at",
        "created_at",
    )
    readonly_fields = fields
    actions = ("retire", "unretire")

    def get_queryset(self, request):
        # The embedding is 3 KB a row and shown nowhere here.
        return super().get_queryset(request).defer("text_emb")

    @admin.display(description="success")
    def success(self, obj):
        return _success_bar(obj)

    @admin.display(description="action")
    def action(self, obj):
        return pretty_json(obj.action_json)

    @admin.action(description="Retire the selected states", permissions=("run",))
    def retire(self, request, queryset):
        for state in queryset:
            services.micro_state_retire(state=state)
        messages.success(request, f"Retired {counted(len(queryset), 'micro-state')}.")

    @admin.action(description="Bring the selected states back", permissions=("run",))
    def unretire(self, request, queryset):
        for state in queryset:
            services.micro_state_unretire(state=state)
        messages.success(request, f"Brought back {counted(len(queryset), 'micro-state')}.")
