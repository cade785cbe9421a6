"""The console's home: what an operator looks at first.

Every signed-in member lands here (``session`` ``view``: the page is the member's own
starting point, not a resource). Each panel then asks the permission table for the resource
it shows (batch jobs, runs, traces), so a role that may not read one never sees it here
either, whatever the table says tomorrow.

An organization without a workflow gets the first steps instead. Otherwise: the batches in
flight (their bars kept moving by console/home.js polling ``home_batches``), what ended
today, the week's success rate per workflow and per portal, the newest failures grouped by
kind, and how the web actions found their targets. A fixed number of queries whatever the
volume (tests/console/test_home.py counts them); the week's panels cached briefly.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.cache import cache
from django.http import JsonResponse
from django.utils import timezone

from console import links
from console.access import console_view, may, page
from console.charts import Line, colour_of, dashed, share_chart_svg
from rcm import permissions
from rcm.context import require_org_id
from workflows.drawing.tiers import tier_mix_svg
from workflows.models import ItemStatus
from workflows.selectors import batch as batch_selectors
from workflows.selectors import overview
from workflows.selectors.traces import tier_mix

IN_FLIGHT_SHOWN = 20
WEEK_DAYS = 7
# Failures grouped: the newest this many of the week (a bound, so that a bad day of 100,000
# failures costs what a thousand do; the page says when it was reached).
FAILURES_GROUPED = 1000
# Lines drawn per chart: past this, the busiest only (every series is in the table below it).
LINES_DRAWN = 8
# The tier mix: a week in six-hour buckets, as on a workflow's admin page.
TIER_BUCKETS_PER_DAY = 4
# The week's panels (its runs per day, workflow and portal, today's runs, the failures, the
# tier mix) read every run and web action of seven days: with 100,000 of each, some 40 ms a
# panel (docs/benchmarks.md). Each is computed once per organization and this many seconds and
# served from the cache meanwhile (the page says as of when); the batches in flight and
# today's batch rows are read live.
WEEK_CACHE_SECONDS = 30
ITEM_OUTCOMES = (ItemStatus.COMPLETED, ItemStatus.FAILED, ItemStatus.CANCELLED)
BAD_IDS = "ids: give batch job numbers separated by commas, such as ids=12,15."


@console_view("session")
def home(request):
    if not overview.workflow_exists():
        return page(request, "console/home_first_run.html", _first_steps(request), title="Home")
    today = timezone.localdate()
    context = {"today": today, "week_days": WEEK_DAYS}
    if may(request, "batch_job", permissions.VIEW):
        context["batches"] = [
            _batch(job) for job in overview.batch_job_in_flight_list(limit=IN_FLIGHT_SHOWN)
        ]
        context["batch_list_url"] = links.batch_list_url()
        context["items_today"] = _items_today(today)
    if may(request, "run", permissions.VIEW):
        context.update(_week_cached("runs", today, lambda: _runs_of_the_week(today)))
        context["failures_grouped"] = FAILURES_GROUPED
    if may(request, "trace", permissions.VIEW):
        context["tier_mix"] = _week_cached("tiers", today, lambda: _tier_mix(today))
    context["week_cache_seconds"] = WEEK_CACHE_SECONDS
    return page(request, "console/home.html", context, title="Home")


@console_view("batch_job")
def home_batches(request):
    """The bars' numbers, for console/home.js: the jobs in flight and the ones the page asks
    about by ``ids`` (so that a bar that finished shows its last numbers)."""
    raw = request.GET.get("ids", "")
    try:
        ids = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        return JsonResponse({"error": BAD_IDS}, status=400)
    jobs = overview.batch_job_in_flight_list(limit=IN_FLIGHT_SHOWN, also_ids=ids)
    batches = [_batch(job) for job in jobs]
    return JsonResponse(
        {"batches": batches, "in_flight": sum(1 for batch in batches if not batch["done"])}
    )


def _first_steps(request) -> dict:
    return {
        "may_add_workflow": may(request, "workflow", permissions.ADD),
        "may_add_endpoint": may(request, "endpoint", permissions.ADD),
        "may_upload": may(request, "batch_job", permissions.ADD),
        "workflow_add_url": links.workflow_add_url(),
        "endpoint_add_url": links.endpoint_add_url(),
        "batch_upload_url": links.batch_upload_url(),
    }


def _batch(job) -> dict:
    """A job's bar: the shares of its rows that succeeded, failed and were cancelled."""
    total = max(job.total_rows, 1)
    return {
        "id": job.pk,
        "url": links.batch_url(job.pk),
        "name": job.file_name or f"Batch {job.pk}",
        "workflow": job.workflow.name,
        "status": job.status_id,
        "done": job.completed_at is not None,
        "total": job.total_rows,
        "processed": job.processed_rows,
        "running": job.running_rows,
        "successful": job.successful_rows,
        "failed": job.failed_rows,
        "cancelled": job.cancelled_rows,
        "percent": batch_selectors.batch_job_progress(job=job).percent_done,
        "widths": {
            name: round(100 * getattr(job, f"{name}_rows") / total, 2)
            for name in ("successful", "failed", "cancelled")
        },
    }


def _items_today(today) -> list[tuple[str, int]]:
    counts = overview.batch_item_outcome_counts(
        since=overview.day_start(today), until=overview.day_start(today + timedelta(days=1))
    )
    return [(status, counts.get(status, 0)) for status in ITEM_OUTCOMES]


def _week_cached(part: str, today, compute):
    """A panel of the week, from the cache when an earlier request of the organization
    computed it less than WEEK_CACHE_SECONDS ago."""
    return cache.get_or_set(
        week_cache_key(require_org_id(), today, part), compute, WEEK_CACHE_SECONDS
    )


def week_cache_key(org_id, today, part: str) -> str:
    return f"console:home:{org_id}:{today.isoformat()}:{part}"


def _runs_of_the_week(today) -> dict:
    week = overview.run_week(today=today, days=WEEK_DAYS)
    return {
        "runs_today": [(name, week.today.get(name, 0)) for name in overview.RUN_OUTCOMES],
        "charts": [
            _chart("workflow", week.days, week.by_workflow),
            _chart("portal", week.days, week.by_portal),
        ],
        "failures": _failures(today),
        "runs_as_of": timezone.localtime(),
    }


def _chart(kind: str, days, series: list[overview.Series]) -> dict:
    """One chart's picture (the busiest LINES_DRAWN series) and its table (every series)."""
    drawn = series[:LINES_DRAWN]
    labels = [day.strftime("%a %d %b") for day in days]
    svg = None
    if drawn:
        svg = share_chart_svg(
            x_labels=labels,
            lines=[Line(one.name, [day.rate for day in one.days]) for one in drawn],
            label=f"success rate per {kind} and day, last {len(days)} days",
        )
    url = links.workflow_url if kind == "workflow" else links.endpoint_url
    return {
        "kind": kind,
        "svg": svg,
        "days": days,
        "drawn": len(drawn),
        "rows": [
            {
                "name": one.name,
                "url": url(one.key),
                "colour": colour_of(index) if index < LINES_DRAWN else "",
                "dashed": dashed(index),
                "days": one.days,
                "succeeded": one.succeeded,
                "ended": one.ended,
            }
            for index, one in enumerate(series)
        ],
    }


def _failures(today) -> dict:
    found = overview.failure_groups(
        since=overview.day_start(today - timedelta(days=WEEK_DAYS - 1)), limit=FAILURES_GROUPED
    )
    groups = [
        {
            "error_kind": group.error_kind,
            "outcome": group.outcome,
            "count": group.count,
            "newest_at": group.newest_at,
            "run": group.example,
            "run_url": links.run_url(group.example.pk),
        }
        for group in found.groups
    ]
    return {"groups": groups, "sampled": found.sampled, "capped": found.capped}


def _tier_mix(today) -> dict:
    until = overview.day_start(today + timedelta(days=1))
    buckets = tier_mix(
        workflow_id=None,
        since=overview.day_start(today - timedelta(days=WEEK_DAYS - 1)),
        until=until,
        buckets=WEEK_DAYS * TIER_BUCKETS_PER_DAY,
    )
    total = sum(bucket.total for bucket in buckets)
    if not total:
        return {"total": 0}
    from_memory = sum(bucket.tier_1 for bucket in buckets) / total
    return {
        "total": total,
        "from_memory": from_memory,
        "svg": tier_mix_svg(buckets),
        "as_of": timezone.localtime(),
    }
