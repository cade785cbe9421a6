"""Reads of the web agent's action traces: how each action's target was found (its tier), per
run and per workflow over time, for operators watching a portal drift and the memory heal.

The web kind writes one trace per browser action, named ``web.<tool>`` (webactions/kinds.py),
with ``tier`` 1 (from memory), 2 (scored repair) or 3 (the model), or none: an action that
needed no element (goto) or whose target was not found (its ``tier_reason`` says ``miss:``
and why, after what tier 1 found: ``validation_failed:hidden; miss: tie: …``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Func, IntegerField, Q, Value
from django.utils import timezone

from workflows.models import WorkflowTrace
from workflows.models.traces import TIERED, WEB_ACTION_PREFIX


@dataclass(frozen=True)
class TierBucket:
    """The web actions of one workflow in ``[start, end)``, by how their target was found."""

    start: datetime
    end: datetime
    tier_1: int = 0  # from memory
    tier_2: int = 0  # repaired by score
    tier_3: int = 0  # chosen by the model
    unresolved: int = 0  # not found

    @property
    def total(self) -> int:
        return self.tier_1 + self.tier_2 + self.tier_3 + self.unresolved

    @property
    def tier_1_share(self) -> float | None:
        return self.tier_1 / self.total if self.total else None


class _WidthBucket(Func):
    """PostgreSQL's ``width_bucket(operand, thresholds)``: ``i`` for an operand from the
    ``i``-th threshold (1-based) up to the next, so the buckets' starts may be any sorted
    times, not only equal widths of absolute time."""

    function = "width_bucket"
    output_field = IntegerField()


def tier_mix(
    *, workflow_id: uuid.UUID | None, since: datetime, until: datetime, buckets: int
) -> list[TierBucket]:
    """The web actions of one workflow (None: of every workflow of the organization) from
    ``since`` up to ``until``, counted per tier in ``buckets`` buckets of equal width (every
    bucket is returned, empty ones too).

    Equal on the wall clock of the current time zone: from a midnight, a day's buckets
    start at the same hours every day, and a day bucket is a calendar day, even across a
    daylight-saving change (a 23- or 25-hour day). Actions that needed no element (goto,
    screenshot) are not counted. One query, grouped in the database, read from the index of
    the counted actions alone (workflow_trace_tiered).
    """
    if buckets < 1 or until <= since:
        raise ValueError("tier_mix needs at least one bucket and since before until")
    starts = _bucket_starts(since=since, until=until, buckets=buckets)
    actions = WorkflowTrace.objects.filter(TIERED, created_at__gte=since, created_at__lt=until)
    if workflow_id is not None:
        actions = actions.filter(workflow_id=workflow_id)
    rows = (
        actions.annotate(bucket=_WidthBucket("created_at", Value(starts)))
        .values("bucket")
        .annotate(
            # Counted by a column the index holds (never null), not by the key: the index is
            # then all the count reads.
            tier_1=Count("created_at", filter=Q(tier=1)),
            tier_2=Count("created_at", filter=Q(tier=2)),
            tier_3=Count("created_at", filter=Q(tier=3)),
            # Among the counted actions, a tierless one is an unresolved one (TIERED).
            unresolved=Count("created_at", filter=Q(tier__isnull=True)),
        )
        .order_by()
    )
    counts = {row.pop("bucket"): row for row in rows}
    ends = [*starts[1:], until]
    return [
        TierBucket(start=start, end=end, **counts.get(number, {}))
        for number, (start, end) in enumerate(zip(starts, ends, strict=True), start=1)
    ]


def _bucket_starts(*, since: datetime, until: datetime, buckets: int) -> list[datetime]:
    zone = timezone.get_current_timezone()
    first = timezone.localtime(since, zone).replace(tzinfo=None)
    width = (timezone.localtime(until, zone).replace(tzinfo=None) - first) / buckets
    return [timezone.make_aware(first + number * width, zone) for number in range(buckets)]


def web_action_list(*, run_id: int):
    """A run's browser actions in the order they were taken, without the columns the run's
    table does not show (the model's prompt and answer are the largest of a row)."""
    return (
        WorkflowTrace.objects.filter(run_id=run_id, action_type__startswith=WEB_ACTION_PREFIX)
        .defer("llm_prompt", "llm_response", "error_detail")
        .order_by("created_at", "id")
    )


def state_outcome_list(*, state_id: int, limit: int) -> list[tuple[datetime, bool]]:
    """(time, success) of the newest ``limit`` web actions whose target came from micro-state
    ``state_id`` (the web agent names it in each action's detail: webactions/kinds.py,
    action_detail), oldest first. Read through the index workflow_trace_state."""
    rows = (
        WorkflowTrace.objects.filter(
            action_type__startswith=WEB_ACTION_PREFIX, action_detail__state=state_id
        )
        .order_by("-created_at", "-id")
        .values_list("created_at", "success")[:limit]
    )
    return list(reversed(rows))
