"""Batch jobs and their rows in the admin, read-only: rows change only through the feeder and
the runs; operators may cancel a batch or retry its failed rows.
"""

from django.contrib import admin, messages
from django.db.models import F
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from rcm.admin import ReadOnlyTenantAdmin, counted, pretty_json, refusal_by_pk, rows_act
from workflows.admin import display
from workflows.models import BatchJob, BatchJobItem, ItemStatus
from workflows.selectors import batch as batch_selectors
from workflows.services import batch as batch_services

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
class BatchJobAdmin(display.RevisionLinked, ReadOnlyTenantAdmin):
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
                    *BatchJob.ROW_COUNTER_FIELDS,
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
        cancelled = rows_act(
            self,
            request,
            queryset.filter(completed_at__isnull=True),
            lambda job: batch_services.batch_job_cancel(job=job),
            refusal_by_pk("Batch job"),
        )
        cancelled_jobs = counted(cancelled, "batch job")
        self.message_user(request, f"Cancelled {cancelled_jobs}.", messages.SUCCESS)

    @admin.action(
        description="Retry the failed rows of the selected batch jobs", permissions=("run",)
    )
    def retry_failed(self, request, queryset):
        retried = rows_act(
            self,
            request,
            queryset,
            lambda job: batch_services.batch_job_retry_failed(job=job),
            refusal_by_pk("Batch job"),
        )
        if retried:
            self.message_user(
                request,
                f"Retrying the failed rows of {counted(retried, 'batch job')}.",
                messages.SUCCESS,
            )


@admin.register(BatchJobItem)
class BatchJobItemAdmin(display.RunLinked, ReadOnlyTenantAdmin):
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

    @admin.display(description="input")
    def input(self, obj):
        return pretty_json(obj.input_data)

    @admin.display(description="output")
    def output(self, obj):
        return pretty_json(obj.output_data)
