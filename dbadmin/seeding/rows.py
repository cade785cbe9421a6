"""A finished batch job's rows, from a shape: each row's input and walk (shapes.py), the times
its nodes ran, and one trace per node, as the history service takes them.

Times: a node starts when the last of its predecessors that ran has ended (so the two parallel
branches of the eligibility shape start together), and rows run ``concurrency`` at a time, a
row starting when a slot frees. A wait node holds no slot (it holds no worker). The job is
placed so that its last row ends at ``ends_at``.

Web nodes are traced by the action the agent had to find a target for, with the tier that found
it (most from memory, some repaired, a few by a model), the micro-state it used and how long
it took; other nodes as the engine traces them (``node.<kind>``).
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
from dataclasses import dataclass

from dbadmin.seeding.shapes import OtherStep, Shape, Walk, WebStep
from dbadmin.seeding.vocabulary import Portal
from webactions.actions import describe
from workflows.services.history import ItemRecord, TraceRecord

# How often each tier found a web action's target, and what it added to the step's time.
TIERS = (1, 2, 3)
TIER_WEIGHTS = (90, 7, 3)
TIER_EXTRA_MS = {1: (0, 0), 2: (300, 1500), 3: (2500, 7000)}
LLM_MODEL = "gpt-4o-mini"
SLOT_GAP_MS = (40, 400)  # the feeder's pause before a freed slot takes the next row
SUCCESS_RATE = (0.85, 0.92)  # a job's share of rows that succeed


@dataclass(frozen=True)
class JobHistory:
    created_at: dt.datetime
    started_at: dt.datetime
    items: list[ItemRecord]


@dataclass
class _Ran:
    """A row's walk with its nodes' times, relative to the row's start."""

    number: int
    row: dict
    walk: Walk
    traces: list[tuple[int, dict]]  # (end in ms from the row's start, TraceRecord fields)
    elapsed_ms: int
    busy_ms: int  # what it held its slot for: everything but waits
    start_ms: int = 0


def job_history(
    *,
    shape: Shape,
    portal: Portal,
    rng: random.Random,
    rows: int,
    people: list[tuple[str, str]],
    states: dict[str, int],
    concurrency: int,
    ends_at: dt.datetime,
    endpoint_id: int,
) -> JobHistory:
    """``rows`` finished rows of ``shape`` on ``portal``, whose web steps worked on the
    endpoint ``endpoint_id``; ``states``: node key -> the micro-state its traced action was
    found by (from memory)."""
    success_rate = rng.uniform(*SUCCESS_RATE)
    predecessors = _predecessors(shape)
    steps = {step.node: step for step in shape.steps}
    ran = []
    for number in range(1, rows + 1):
        row = shape.row(rng, portal, rng.choice(people))
        walk = shape.walk(rng, portal, row, success_rate)
        ran.append(_timed(rng, number, row, walk, steps, predecessors, states))
    span = _schedule(rng, ran, concurrency)
    started_at = ends_at - dt.timedelta(milliseconds=span)
    created_at = started_at - dt.timedelta(seconds=rng.randrange(20, 180))
    return JobHistory(
        created_at=created_at,
        started_at=started_at,
        items=[_record(item, started_at, endpoint_id) for item in ran],
    )


def _predecessors(shape: Shape) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for source, target, _ in shape.transitions:
        found.setdefault(target, []).append(source)
    return found


def _timed(rng, number, row, walk, steps, predecessors, states) -> _Ran:
    ends: dict[str, int] = {}
    traces = []
    busy = 0
    for key in walk.nodes:
        step = steps[key]
        start = max((ends[p] for p in predecessors.get(key, ()) if p in ends), default=0)
        failed = key == walk.failed_node
        if isinstance(step, WebStep):
            duration, fields = _web_trace(rng, step, states.get(key), walk, failed)
        else:
            duration, fields = _other_trace(rng, step)
        fields["duration_ms"] = duration
        ends[key] = start + duration
        busy += 0 if isinstance(step, OtherStep) and step.kind == "wait" else duration
        traces.append((ends[key], fields))
    elapsed = max(ends.values())
    return _Ran(number, row, walk, traces, elapsed, busy)


def _web_trace(rng, step: WebStep, state_id, walk: Walk, failed: bool) -> tuple[int, dict]:
    duration = rng.randint(*step.duration_ms)
    fields = {
        "node_key": step.node,
        "action_type": f"web.{step.action['tool']}",
        "detail": {"phase": "actions", "action": step.traced, "target": step.target},
    }
    if failed:
        # The last of the node's attempts; its error is the walk's, without the node's name.
        error = walk.error.split(": ", 1)[1]
        duration = 60_000 if "timeout" in error else duration
        fields.update(success=False, error=error, attempt=walk.attempts)
        return duration, fields
    tier = rng.choices(TIERS, weights=TIER_WEIGHTS)[0]
    duration += rng.randint(*TIER_EXTRA_MS[tier])
    element = step.element
    summary = f'{element["kind"]} "{element["name"]}" ({element["css"]})'
    detail = fields["detail"]
    detail["resolve_ms"] = round(rng.uniform(4, 40) if tier == 1 else rng.uniform(40, 400), 2)
    if tier == 1:
        detail.update(resolved=f"memory: {summary}", state=state_id)
        detail["similarity"] = round(rng.uniform(0.9, 0.995), 4)
        fields["tier_reason"] = "hit"
    elif tier == 2:
        detail.update(resolved=summary, state=state_id)
        detail["similarity"] = round(rng.uniform(0.8, 0.9), 4)
        score, runner_up = rng.uniform(0.82, 0.99), rng.uniform(0.2, 0.6)
        fields["tier_reason"] = (
            f"validation_failed:name; repaired score={score:.2f} runner_up={runner_up:.2f}"
        )
    else:
        detail.update(resolved=f"model: {summary}")
        fields.update(
            tier_reason="miss; llm (tier 2: no candidate scored above 0.60)",
            llm_prompt=f"Which element is {describe(step.target)} on the page {step.path}?",
            llm_response=f'{{"choice": {rng.randrange(1, 40)}}}',
            llm_model=LLM_MODEL,
            llm_tokens_used=rng.randint(700, 1600),
        )
    fields.update(success=True, tier=tier)
    return duration, fields


def _other_trace(rng, step: OtherStep) -> tuple[int, dict]:
    return rng.randint(*step.duration_ms), {
        "node_key": step.node,
        "action_type": f"node.{step.kind}",
        "detail": {"node_type": step.node_type},
        "success": True,
    }


def _schedule(rng: random.Random, ran: list[_Ran], concurrency: int) -> int:
    """Each row's start, ``concurrency`` slots taken in turn as they free; the job's span."""
    free = [0] * concurrency  # when each slot is free again (a heap)
    span = 0
    for item in ran:
        item.start_ms = heapq.heappop(free)
        heapq.heappush(free, item.start_ms + item.busy_ms + rng.randint(*SLOT_GAP_MS))
        span = max(span, item.start_ms + item.elapsed_ms)
    return span


def _record(item: _Ran, started_at: dt.datetime, endpoint_id: int) -> ItemRecord:
    began = started_at + dt.timedelta(milliseconds=item.start_ms)
    walk = item.walk
    return ItemRecord(
        row_number=item.number,
        input_data=item.row,
        status=walk.status,
        completed_at=began + dt.timedelta(milliseconds=item.elapsed_ms),
        output_data=walk.output,
        error_message=walk.error,
        attempts=walk.attempts,
        traces=tuple(
            TraceRecord(
                at=began + dt.timedelta(milliseconds=end),
                endpoint_id=endpoint_id if fields["action_type"].startswith("web.") else None,
                **fields,
            )
            for end, fields in item.traces
        ),
    )
