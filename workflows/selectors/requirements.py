"""Reads for requirements: the catalogue, the policies, and the effective fields of a task.

``requirements_effective`` resolves three layers into the fields one organization must supply
for one task on one portal on one date (docs/requirements.md has an example):

1. the platform's ``field_requirement`` rows for the task; rows narrowed to the endpoint's
   channel type replace same-named platform rows;
2. the payer's ``payer_requirement`` rows (the endpoint's channel type) effective on the date,
   the highest version of each field winning. A payer row adds a field or tightens one: its
   label (when given), type, is_array and conditional_on (when given) replace the field's, its
   validation keys are merged over the field's, and its rtype applies only when stricter
   (required > conditional > optional): a payer cannot make a field the platform needs
   optional. An ``output`` rtype on either side is a change of kind, so the payer's wins;
3. the organization's ``org_requirement_policy`` rows for the task (for every portal, or for
   this endpoint) effective on the date, in effective-date order then id: add (the spec is the
   whole field; it replaces a same-named one), remove, modify (the spec's keys replace the
   field's, validation keys merge, a validation key set to null drops that rule). A modify or
   remove of a field that is not there (an earlier policy removed it) changes nothing.

Without an endpoint only the platform rows and the policies for every portal apply. The check
of a row against the resolved fields is ``workflows.validation.rows``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping
from datetime import date

from django.db.models import Q

from rcm.context import org_context
from rcm.errors import NotFound
from rcm.lookups import RequirementType
from tenants.models import Endpoint
from workflows.models import (
    FieldRequirement,
    OrgRequirementPolicy,
    PayerRequirement,
    PolicyOperation,
    RequirementChangelog,
    TaskType,
)
from workflows.validation.fields import EffectiveField

SOURCE_PLATFORM = "platform"

# A payer's rtype replaces the field's only when it asks for more than this rank.
RTYPE_STRICTNESS = {
    RequirementType.OPTIONAL: 0,
    RequirementType.CONDITIONAL: 1,
    RequirementType.REQUIRED: 2,
}


# -- catalogue and lists -------------------------------------------------------------------


def task_type_list():
    return TaskType.objects.all()


def task_type_detail_list():
    return TaskType.objects.prefetch_related("field_requirements__channel_type")


def task_type_find(*, ref: str) -> TaskType | None:
    """A task type by its id or by ``domain/action`` (``eligibility/check``)."""
    ref = ref.strip()
    if "/" in ref:
        domain, _, action = ref.partition("/")
        return TaskType.objects.filter(domain_id=domain, action_id=action).first()
    try:
        task_type_id = uuid.UUID(ref)
    except ValueError:
        return None
    return TaskType.objects.filter(pk=task_type_id).first()


def payer_requirement_list(
    *,
    channel_type_code: str | None = None,
    task_type: TaskType | None = None,
    as_of: date | None = None,
):
    rows = PayerRequirement.objects.select_related("channel_type", "task_type")
    if channel_type_code is not None:
        rows = rows.filter(channel_type__code=channel_type_code)
    if task_type is not None:
        rows = rows.filter(task_type=task_type)
    if as_of is not None:
        rows = rows.filter(_effective_on(as_of))
    return rows


def org_policy_list(*, task_type: TaskType | None = None, endpoint_id: int | None = None):
    """The organization's policies (call in its context; the API base class scopes them)."""
    rows = OrgRequirementPolicy.objects.select_related("task_type")
    if task_type is not None:
        rows = rows.filter(task_type=task_type)
    if endpoint_id is not None:
        rows = rows.filter(endpoint_id=endpoint_id)
    return rows


def requirement_changelog_list():
    """The organization's changes and the platform's (payer requirements)."""
    return RequirementChangelog.objects.all()


def _effective_on(as_of: date) -> Q:
    return Q(effective_date__lte=as_of) & (Q(end_date__isnull=True) | Q(end_date__gt=as_of))


# -- resolution ----------------------------------------------------------------------------


def requirements_effective(
    *,
    org_id: uuid.UUID,
    task_type: TaskType,
    endpoint: Endpoint | None = None,
    as_of: date,
    exclude_policy_id: int | None = None,
) -> list[EffectiveField]:
    """The fields ``org_id`` must supply for ``task_type`` on ``endpoint`` on ``as_of``.

    ``exclude_policy_id`` leaves one policy out: the services check a policy being changed
    against the set as it would be without it.
    """
    if endpoint is not None and str(endpoint.org_id) != str(org_id):
        raise NotFound("not_found", "Not found.")
    channel = endpoint.channel_type if endpoint is not None else None
    fields = _platform_fields(task_type=task_type, channel_type=channel)
    if channel is not None:
        _payer_rows_apply(fields, _payer_rows(channel=channel, task_type=task_type, as_of=as_of))
    with org_context(org_id):
        policies = OrgRequirementPolicy.objects.filter(_effective_on(as_of), task_type=task_type)
        on_endpoint = Q(endpoint__isnull=True)
        if endpoint is not None:
            on_endpoint |= Q(endpoint_id=endpoint.pk)
        # pk=None excludes nothing (Django reads it as IS NULL); the stubs' lookup check refuses
        # None.
        policies = policies.filter(on_endpoint).exclude(pk=exclude_policy_id)  # type: ignore[misc]
        for policy in policies.order_by("effective_date", "id"):
            _policy_apply(fields, policy)
    return sorted(fields.values(), key=lambda field: field.display_order)


def _platform_fields(*, task_type: TaskType, channel_type) -> dict[str, EffectiveField]:
    rows = FieldRequirement.objects.filter(task_type=task_type)
    if channel_type is None:
        rows = rows.filter(channel_type__isnull=True)
    else:
        rows = rows.filter(Q(channel_type__isnull=True) | Q(channel_type=channel_type))
    fields: dict[str, EffectiveField] = {}
    # Platform rows first, so that a channel-narrowed row replaces its platform twin.
    for row in sorted(rows, key=lambda row: row.channel_type_id is not None):
        source = SOURCE_PLATFORM if row.channel_type_id is None else f"platform:{channel_type.code}"
        fields[row.field_name] = _field_from_row(
            row,
            source=source,
            validation=dict(row.validation or {}),
            display_order=row.display_order,
            path=row.path or row.field_name,
        )
    return fields


def _field_from_row(
    row: FieldRequirement | PayerRequirement,
    *,
    source: str,
    validation: dict,
    display_order: int,
    path: str,
) -> EffectiveField:
    """The field as a platform or payer row states it, where no layer below had it."""
    return EffectiveField(
        field_name=row.field_name,
        label=row.label or row.field_name,
        field_type=row.field_type,
        rtype=row.rtype_id,  # type: ignore[arg-type]  # NOT NULL; the stubs say optional
        is_array=row.is_array,
        validation=validation,
        conditional_on=row.conditional_on,
        display_order=display_order,
        path=path,
        sources=(source,),
    )


def _payer_rows(*, channel, task_type: TaskType, as_of: date) -> list[PayerRequirement]:
    rows = PayerRequirement.objects.filter(
        _effective_on(as_of), channel_type=channel, task_type=task_type
    ).order_by("field_name", "-version")
    winners: dict[str, PayerRequirement] = {}
    for row in rows:
        winners.setdefault(row.field_name, row)
    for row in winners.values():
        row.channel_type = channel  # already loaded: spares a query per row for its code
    return list(winners.values())


def _payer_rows_apply(fields: dict[str, EffectiveField], rows: Iterable[PayerRequirement]):
    for row in rows:
        source = f"payer:{row.channel_type.code} v{row.version}"
        current = fields.get(row.field_name)
        if current is None:
            fields[row.field_name] = _field_from_row(
                row,
                source=source,
                validation=_merged({}, row.validation),
                display_order=_next_order(fields),
                path=row.field_name,
            )
            continue
        fields[row.field_name] = dataclasses.replace(
            current,
            label=row.label or current.label,
            field_type=row.field_type,
            # The column is NOT NULL: django-stubs type a text primary key's _id as optional.
            rtype=_tighter_rtype(current.rtype, row.rtype_id),  # type: ignore[arg-type]
            is_array=row.is_array,
            validation=_merged(current.validation, row.validation),
            conditional_on=row.conditional_on
            if row.conditional_on is not None
            else current.conditional_on,
            sources=(*current.sources, source),
        )


def _tighter_rtype(current: str, payer: str) -> str:
    if RequirementType.OUTPUT in (current, payer):
        return payer
    return max(current, payer, key=lambda rtype: RTYPE_STRICTNESS.get(rtype, 0))


def _policy_apply(fields: dict[str, EffectiveField], policy: OrgRequirementPolicy) -> None:
    source = f"org policy #{policy.pk}"
    spec = policy.spec or {}
    current = fields.get(policy.field_name)
    if policy.operation == PolicyOperation.REMOVE:
        fields.pop(policy.field_name, None)
    elif policy.operation == PolicyOperation.ADD:
        added = field_from_spec(policy.field_name, spec, source=source)
        if current is None:
            added = dataclasses.replace(added, display_order=_next_order(fields))
        else:
            added = dataclasses.replace(
                added,
                display_order=current.display_order,
                path=current.path,
                sources=(*current.sources, source),
            )
        fields[policy.field_name] = added
    elif current is not None:
        fields[policy.field_name] = field_modified(current, spec, source=source)


def field_from_spec(field_name: str, spec: Mapping, *, source: str) -> EffectiveField:
    """The field an add spec describes (the services check the result with it too)."""
    return EffectiveField(
        field_name=field_name,
        label=spec.get("label") or field_name,
        field_type=spec["field_type"],
        rtype=spec.get("rtype", RequirementType.REQUIRED),
        is_array=spec.get("is_array", False),
        validation=_merged({}, spec.get("validation")),
        conditional_on=spec.get("conditional_on"),
        path=field_name,
        sources=(source,),
    )


def field_modified(current: EffectiveField, spec: Mapping, *, source: str) -> EffectiveField:
    """``current`` with a modify spec applied (the services check the result with it too)."""
    changes = {key: spec[key] for key in ("field_type", "rtype", "is_array") if key in spec}
    if spec.get("label"):
        changes["label"] = spec["label"]
    if "conditional_on" in spec:
        changes["conditional_on"] = spec["conditional_on"]
    if "validation" in spec:
        changes["validation"] = _merged(current.validation, spec["validation"])
    return dataclasses.replace(current, **changes, sources=(*current.sources, source))


def _merged(base: Mapping, changes: Mapping | None) -> dict:
    """``base`` with ``changes`` over it; a key changed to None is dropped."""
    merged = {**base, **(changes or {})}
    return {key: value for key, value in merged.items() if value is not None}


def _next_order(fields: Mapping[str, EffectiveField]) -> int:
    return max((field.display_order for field in fields.values()), default=0) + 10
