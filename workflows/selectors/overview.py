"""Reads for the console's home: an organization's work at a glance.

Batches in flight (from their counters), the rows and runs that ended today, the week's success
rate per workflow and per portal, and the newest failures grouped by kind. Each is one query
grouped in the database over an indexed column (migration 0011), so that the home costs the
same few queries with ten rows as with 100,000-row batches.

A "day" is a calendar day in the current time zone (the server's TIME_ZONE). A run succeeded
when it completed at a success outcome, as its batch row then counts "completed"
(workflows/services/batch.py, batch_item_settle).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, TruncDate
from django.utils import timezone

from tenants.models import Endpoint
from workflows.models import (
    BatchJob,
    BatchJobItem,
    NodeRun,
    NodeRunStatus,
    RunResult,
    RunStatus,
    Workflow,
    WorkflowRevision,
    WorkflowRun,
)
from workflows.models.runs import RUN_FAILED

# A run's outcomes as the home names them, in the order it shows them.
RUN_OUTCOMES = (
    "succeeded",
    "failure outcome",
    "failed",
    "timed out",
    "cancelled",
)


def run_outcome(status: str, result: str) -> str:
    if status == RunStatus.COMPLETED:
        return "succeeded" if result == RunResult.SUCCESS else "failure outcome"
    return "timed out" if status == RunStatus.TIMEOUT else status


def day_start(day: date) -> datetime:
    """The first instant of ``day`` in the current time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def workflow_exists() -> bool:
    """Whether the organization has made any workflow yet (the home's first-run state)."""
    return Workflow.objects.exists()


# -- batches in flight ------------------------------------------------------------------------


def batch_job_in_flight_list(*, limit: int, also_ids: Iterable[int] = ()) -> list[BatchJob]:
    """The jobs not yet finished, newest first (at most ``limit``), and the jobs ``also_ids``
    names whatever their state: a page that polls the bars it shows learns their last numbers
    when they finish. Counters only: no row of a job is read."""
    also_ids = list(also_ids)[:limit]
    jobs = (
        BatchJob.objects.filter(Q(completed_at__isnull=True) | Q(pk__in=also_ids))
        .select_related("workflow")
        .only(
            "file_name",
            "status_id",
            *BatchJob.ROW_COUNTER_FIELDS,
            "created_at",
            "started_at",
            "completed_at",
            "speed_since",
            "speed_base_rows",
            "workflow__name",
        )
        .order_by("-created_at", "-id")
    )
    return list(jobs[: limit + len(also_ids)])


# -- what ended today -------------------------------------------------------------------------


def batch_item_outcome_counts(*, since: datetime, until: datetime) -> dict[str, int]:
    """The batch rows that ended in ``[since, until)``, counted by status."""
    # COUNT(*), not of the key: the index (batch_job_item_ended) holds no id and is all the
    # count reads.
    rows = (
        BatchJobItem.objects.filter(completed_at__gte=since, completed_at__lt=until)
        .values("status")
        .annotate(count=Count("*"))
        .order_by()
    )
    return {row["status"]: row["count"] for row in rows}


# -- the week's success rate ------------------------------------------------------------------


@dataclass
class DayRate:
    day: date
    succeeded: int = 0
    ended: int = 0  # runs that ended that day: succeeded, failed or cancelled

    @property
    def rate(self) -> float | None:
        return self.succeeded / self.ended if self.ended else None


@dataclass
class Series:
    """One workflow's or one portal's runs, day by day."""

    key: object  # the workflow's id or the endpoint's
    name: str
    days: list[DayRate]

    @property
    def ended(self) -> int:
        return sum(day.ended for day in self.days)

    @property
    def succeeded(self) -> int:
        return sum(day.succeeded for day in self.days)


@dataclass
class RunWeek:
    days: list[date]
    by_workflow: list[Series]  # busiest first
    by_portal: list[Series]
    today: dict[str, int] = field(default_factory=dict)  # RUN_OUTCOMES -> runs ended today


def run_week(*, today: date, days: int = 7) -> RunWeek:
    """The runs that ended in the ``days`` calendar days up to ``today`` (included), per day:
    per workflow, per portal (the endpoint the run's revision was published with, which its
    batch is fed against) and, for today, by outcome. Two queries: the runs grouped by
    revision, day and outcome; then what those few revisions name."""
    first = today - timedelta(days=days - 1)
    calendar = [first + timedelta(days=number) for number in range(days)]
    zone = timezone.get_current_timezone()
    # Read from the index workflow_run_ended alone (COUNT(*): it holds no id).
    rows = list(
        WorkflowRun.objects.filter(
            ended_at__gte=day_start(first), ended_at__lt=day_start(today + timedelta(days=1))
        )
        .annotate(day=TruncDate("ended_at", tzinfo=zone))
        .values("revision_id", "day", "status", "result")
        .annotate(count=Count("*"))
        .order_by()
    )
    revisions = _revisions_named({row["revision_id"] for row in rows})
    week = RunWeek(days=calendar, by_workflow=[], by_portal=[])
    workflows: dict[object, Series] = {}
    portals: dict[object, Series] = {}
    for row in rows:
        revision = revisions[row["revision_id"]]
        outcome = run_outcome(row["status"], row["result"])
        if row["day"] == today:
            week.today[outcome] = week.today.get(outcome, 0) + row["count"]
        targets = [_series(workflows, revision["workflow_id"], revision["workflow_name"], calendar)]
        if revision["endpoint_id"] is not None:
            name = revision["endpoint_name"] or f"endpoint {revision['endpoint_id']}"
            targets.append(_series(portals, revision["endpoint_id"], name, calendar))
        index = (row["day"] - first).days
        for series in targets:
            series.days[index].ended += row["count"]
            if outcome == "succeeded":
                series.days[index].succeeded += row["count"]
    week.by_workflow = _busiest_first(workflows)
    week.by_portal = _busiest_first(portals)
    return week


def _revisions_named(ids: set[int]) -> dict[int, dict]:
    """Each revision's workflow and the endpoint its snapshot names (a handful of rows: the
    snapshot's JSON is read once per revision, never once per run)."""
    endpoint_name = Endpoint.objects.filter(pk=OuterRef("endpoint_id")).values("name")[:1]
    rows = (
        WorkflowRevision.objects.filter(pk__in=ids)
        .annotate(endpoint_id=Cast(KT("graph__endpoint_id"), IntegerField()))
        .annotate(endpoint_name=Subquery(endpoint_name), workflow_name=F("workflow__name"))
        .values("pk", "workflow_id", "workflow_name", "endpoint_id", "endpoint_name")
    )
    return {row["pk"]: row for row in rows}


def _series(found: dict, key, name: str, calendar: list[date]) -> Series:
    if key not in found:
        found[key] = Series(key=key, name=name, days=[DayRate(day) for day in calendar])
    return found[key]


def _busiest_first(found: dict) -> list[Series]:
    return sorted(found.values(), key=lambda series: (-series.ended, series.name))


# -- the newest failures ----------------------------------------------------------------------


@dataclass(frozen=True)
class FailureGroup:
    error_kind: str  # of the node that failed; "timeout" for a run past its deadline; "" none
    outcome: str  # the failure outcome the run reached; "" when it reached none
    count: int
    newest_at: datetime
    example: WorkflowRun  # the newest of the group, with its workflow's name


@dataclass(frozen=True)
class Failures:
    groups: list[FailureGroup]
    sampled: int  # the failures grouped
    capped: bool  # True when there were more than ``limit``: only the newest are grouped


def failure_groups(*, since: datetime, limit: int) -> Failures:
    """The newest ``limit`` failed runs that ended since ``since``, grouped by the failing
    node's error kind and the failure outcome reached, each group with its count and its
    newest run; groups with the newest failure first. Bounded by ``limit`` so that a day of
    100,000 failures costs what a thousand do. Two queries."""
    newest = (
        WorkflowRun.objects.filter(RUN_FAILED, ended_at__gte=since)
        .order_by("-ended_at", "-id")
        .values("pk")[:limit]
    )
    node_kind = (
        NodeRun.objects.filter(run_id=OuterRef("pk"), status=NodeRunStatus.FAILED)
        .order_by("-ended_at", "-id")
        .values("error_kind")[:1]
    )
    run_kind = Case(
        When(status=RunStatus.TIMEOUT, then=Value("timeout")),
        default=Value(""),
        output_field=CharField(),
    )
    rows = list(
        WorkflowRun.objects.filter(pk__in=newest)
        .annotate(kind=Coalesce(Subquery(node_kind), run_kind))
        .values("kind", "outcome")
        .annotate(
            count=Count("pk"),
            newest_at=Max("ended_at"),
            runs=ArrayAgg("pk", order_by=("-ended_at", "-pk")),
        )
        .order_by("-newest_at", "kind", "outcome")
    )
    examples = WorkflowRun.objects.filter(pk__in=[row["runs"][0] for row in rows])
    examples = examples.select_related("workflow").only(
        "status", "result", "outcome", "error", "ended_at", "workflow__name"
    )
    by_id = {run.pk: run for run in examples}
    groups = [
        FailureGroup(
            error_kind=row["kind"],
            outcome=row["outcome"],
            count=row["count"],
            newest_at=row["newest_at"],
            example=by_id[row["runs"][0]],
        )
        for row in rows
    ]
    sampled = sum(group.count for group in groups)
    return Failures(groups=groups, sampled=sampled, capped=sampled >= limit)
