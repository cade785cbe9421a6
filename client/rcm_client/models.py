"""What the API returns, as frozen dataclasses.

Fields are named and valued as the API sends them (ids as given: UUIDs as text, numbers as
numbers; JSON objects as dicts), except timestamps, which become aware ``datetime``s, and
nested objects, which become their own dataclass. A field the server sends and this version
does not know is ignored, so a newer platform does not break an older client; every object
keeps the whole answer in ``raw`` for such fields. Fields only a detail answer carries (a
workflow's ``nodes``, a run's ``context``) are None on objects that came from a list.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar

_model = dataclasses.dataclass(frozen=True, kw_only=True, slots=True)


@_model
class ApiObject:
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    # field name -> how its JSON value becomes the field's (filled on first use per class)
    _plans: ClassVar[dict[type, tuple[frozenset[str], tuple[tuple[str, Callable], ...]]]] = {}

    @classmethod
    def from_api(cls, data: Mapping[str, Any]):
        """The object for one JSON object of the API; unknown keys are left in ``raw``."""
        plan = cls._plans.get(cls) or cls._plan()
        names, converters = plan
        values = {name: data[name] for name in names if name in data}
        for name, convert in converters:
            value = values.get(name)
            if value is not None:
                values[name] = convert(value)
        return cls(raw=data, **values)

    @classmethod
    def _plan(cls):
        # Read from the annotations once per class: the hot path (a list of thousands of
        # rows) then does a dict lookup and a call per converted field, nothing more.
        hints = typing.get_type_hints(cls)
        names, converters = [], []
        for field in dataclasses.fields(cls):
            if field.name == "raw":
                continue
            names.append(field.name)
            convert = _converter(hints[field.name])
            if convert is not None:
                converters.append((field.name, convert))
        plan = (frozenset(names), tuple(converters))
        cls._plans[cls] = plan
        return plan


def _converter(hint) -> Callable | None:
    kinds = [arg for arg in typing.get_args(hint) if arg is not type(None)] or [hint]
    kind = kinds[0]
    if kind is datetime:
        return datetime.fromisoformat  # 3.11 reads the API's "…Z" too
    if isinstance(kind, type) and issubclass(kind, ApiObject):
        return kind.from_api
    if typing.get_origin(kind) is tuple:
        item = typing.get_args(kind)[0]
        if isinstance(item, type) and issubclass(item, ApiObject):
            return lambda values: tuple(item.from_api(value) for value in values)
    return None


@_model
class Organization(ApiObject):
    id: str
    name: str
    org_type: str
    email_domain: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


@_model
class Endpoint(ApiObject):
    """A portal of the organization (one per channel type)."""

    id: int
    name: str
    channel_type: str
    base_url: str
    effective_base_url: str
    config: dict
    created_at: datetime
    updated_at: datetime


@_model
class Workflow(ApiObject):
    id: str
    name: str
    description: str
    status: str
    required_data: list[str]
    task_type_id: str | None
    task_type: str | None
    endpoint_id: int | None
    version: int
    latest_revision_num: int | None
    draft_updated_at: datetime
    published_at: datetime | None
    created_by_id: str | None
    created_at: datetime
    updated_at: datetime
    # detail only: the draft graph
    nodes: list[dict] | None = None
    transitions: list[dict] | None = None


@_model
class Revision(ApiObject):
    """A published, frozen version of a workflow's graph."""

    workflow_id: str
    revision_num: int
    comment: str
    created_by_id: str | None
    created_at: datetime
    graph: dict | None = None  # detail only


@_model
class NodeRun(ApiObject):
    id: int
    node_key: str
    status: str
    attempt: int
    label: str
    output: Any
    error: str
    error_kind: str
    not_before: datetime | None
    started_at: datetime | None
    ended_at: datetime | None


RUN_FINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "timeout"})


@_model
class Run(ApiObject):
    """One input row going through one revision of a workflow."""

    id: int
    workflow_id: str
    revision_num: int
    status: str
    outcome: str
    result: str
    error: str
    external_id: str | None
    input: dict
    cancel_requested: bool
    deadline_at: datetime | None
    created_by_id: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: int | None
    # detail only
    context: dict | None = None
    nodes: tuple[NodeRun, ...] | None = None

    @property
    def finished(self) -> bool:
        return self.status in RUN_FINAL_STATUSES


@_model
class BatchProgress(ApiObject):
    percent_done: float
    rows_per_second: float | None
    eta_seconds: int | None
    estimated_completion_at: datetime | None


@_model
class BatchJob(ApiObject):
    """One uploaded file (or list of rows) running through one workflow revision."""

    id: int
    workflow_id: str
    revision_id: int
    task_type_id: str | None
    endpoint_id: int | None
    status: str
    prompt: str
    file_name: str
    max_concurrency: int
    on_invalid: str
    total_rows: int
    pending_rows: int
    running_rows: int
    successful_rows: int
    failed_rows: int
    cancelled_rows: int
    processed_rows: int
    cancel_requested: bool
    progress: BatchProgress
    created_by_id: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None

    @property
    def finished(self) -> bool:
        """Every row has ended (completed, partially_completed, failed or cancelled); a
        retry of its failed rows makes it unfinished again."""
        return self.completed_at is not None


@_model
class BatchItem(ApiObject):
    """One row of a batch job."""

    id: int
    row_number: int
    status: str
    input: dict
    output: Any
    error: str
    attempts: int
    run_id: int | None
    created_at: datetime
    completed_at: datetime | None


@_model
class MicroState(ApiObject):
    """A page the web agent remembers, with the action that worked on it."""

    id: int
    workflow_id: str | None
    node_id: int | None
    endpoint_id: int | None
    step_key: str
    url_pattern: str
    dom_snapshot: str
    action_json: dict
    semantic_spec: dict
    label: str
    category: str
    required: bool
    is_dynamic: bool
    mini_score: float
    success_count: int
    failure_count: int
    success_ema: float
    is_retired: bool
    aliased_to_id: int | None
    embedder: str
    embedder_dimension: int
    last_hit_at: datetime | None
    created_at: datetime
    updated_at: datetime
    text_emb: list[float] | None = None  # with include_embedding=True only


@_model
class WebAction(ApiObject):
    """An action list run once on an endpoint in a real browser."""

    id: int
    endpoint_id: int | None
    credential_id: int | None
    status: str
    label: str
    attempt: int
    max_attempts: int
    timeout_s: int
    error_kind: str
    error: str
    duration_ms: int | None
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # detail only
    actions: list | None = None
    outcomes: dict | None = None
    input: dict | None = None
    outputs: dict | None = None
    results: list[dict] | None = None
    screenshots: list[dict] | None = None
