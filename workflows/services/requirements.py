"""Writes for requirements: organization policies and new payer-requirement versions.

Every write appends a ``requirement_changelog`` row (old and new value, reason, who) in the same
transaction, here and not in a trigger, so the log says what the service decided rather than
what a trigger guessed. A spec is checked before anything is written; every problem is named
in one 400 (``spec.validation.pattern``, ``field_name``, ``end_date``, ...).
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from rcm.context import org_context
from rcm.errors import ApplicationError, Conflict, NotFound
from rcm.lookups import RequirementType, UserRole, role_at_least
from tenants import selectors as tenant_selectors
from tenants.models import ChannelType, Endpoint, User
from workflows.models import (
    FieldType,
    OrgRequirementPolicy,
    PayerRequirement,
    PolicyOperation,
    RequirementChangelog,
    TaskType,
)
from workflows.selectors.requirements import (
    field_from_spec,
    field_modified,
    requirements_effective,
)
from workflows.validation.fields import EffectiveField

FIELD_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]{0,99}$"
SPEC_KEYS = ("label", "field_type", "rtype", "is_array", "validation", "conditional_on")
VALIDATION_KEYS = ("pattern", "min_length", "max_length", "enum", "min", "max", "date_format")
POLICY_EDITABLE = {
    "endpoint",
    "field_name",
    "operation",
    "spec",
    "effective_date",
    "end_date",
    "approved_by_id",
}


class ChangelogTable:
    ORG_POLICY = "org_requirement_policy"
    PAYER_REQUIREMENT = "payer_requirement"


class Change:
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


INVALID = "The requirement is invalid; see details for each field."
NOT_AN_OBJECT = "Must be an object."
UNKNOWN_KEY = "Unknown key."
NOT_TEXT = "Must be text."
TEXT_TOO_LONG = "Must be at most 200 characters."
NOT_A_BOOL = "Must be true or false."
BAD_FIELD_NAME = "Must start with a letter or _ and hold only letters, digits, _ and . (≤ 100)."
BAD_FIELD_TYPE = f"Must be one of: {', '.join(FieldType.values)}."
BAD_RTYPE = f"Must be one of: {', '.join(RequirementType.ordered())}."
BAD_REGEX = "Not a valid regular expression."
NOT_A_COUNT = "Must be a whole number ≥ 0."
NOT_A_NUMBER = "Must be a number."
MIN_ABOVE_MAX = "Must not be greater than the maximum."
BAD_ENUM = "Must be a non-empty list of text or numbers."
BAD_DATE_FORMAT = "Not a date format that round-trips a full date (e.g. %Y-%m-%d)."
BAD_CONDITION = (
    'Must be {"field": <name>} with exactly one of "equals": <value>, "in": [<values>] '
    'or "present": true/false.'
)
SELECT_NEEDS_ENUM = "A select field needs validation.enum."
CONDITIONAL_NEEDS_CONDITION = "A conditional field needs conditional_on."
ADD_NEEDS_FIELD_TYPE = "An add must give the field_type."
BAD_OPERATION = f"Must be one of: {', '.join(PolicyOperation.values)}."
REMOVE_TAKES_NO_SPEC = "A remove takes no spec."
MODIFY_NEEDS_SPEC = "A modify must change at least one attribute."
NO_SUCH_FIELD = "The task has no field of this name on the policy's effective date."
END_NOT_AFTER_START = "Must be after effective_date."
REASON_REQUIRED = "Give a reason for the change."
NOT_AN_APPROVER = "Must be an active org_admin member of this organization."
NOT_EDITABLE = "Not editable."
VERSION_CONFLICT = "Another version of this payer requirement was created at the same time."


# -- organization policies -----------------------------------------------------------------


@transaction.atomic
def org_policy_create(
    *,
    org_id: uuid.UUID,
    task_type: TaskType,
    field_name: str,
    operation: str,
    effective_date: date,
    reason: str,
    actor: User | None,
    endpoint: Endpoint | None = None,
    spec: dict | None = None,
    end_date: date | None = None,
    approved_by_id: uuid.UUID | None = None,
) -> OrgRequirementPolicy:
    """A new add/remove/modify rule of the organization for one field of a task."""
    policy = OrgRequirementPolicy(
        org_id=org_id,
        task_type=task_type,
        endpoint=endpoint,
        field_name=field_name,
        operation=operation,
        spec=spec or {},
        effective_date=effective_date,
        end_date=end_date,
        reason=reason,
        approved_by_id=approved_by_id,
        created_by=actor,
    )
    with org_context(org_id):
        _policy_check(policy)
        policy.save(force_insert=True)
        _changelog_record(
            org_id=org_id,
            table_name=ChangelogTable.ORG_POLICY,
            record_id=policy.pk,
            change=Change.CREATED,
            old_value=None,
            new_value=_policy_snapshot(policy),
            reason=reason,
            actor=actor,
        )
    return policy


@transaction.atomic
def org_policy_update(
    *, policy: OrgRequirementPolicy, actor: User | None, reason: str, **changes: Any
) -> OrgRequirementPolicy:
    """Change a policy; ``reason`` says why and becomes the policy's reason."""
    unknown = sorted(set(changes) - POLICY_EDITABLE)
    if unknown:
        raise ApplicationError("invalid", INVALID, {name: [NOT_EDITABLE] for name in unknown})
    with org_context(policy.org_id):
        # Locked, so that two concurrent edits log each other's value as the old one.
        policy = OrgRequirementPolicy.objects.select_for_update().get(pk=policy.pk)
        old_value = _policy_snapshot(policy)
        for name, value in changes.items():
            setattr(policy, name, value)
        if "spec" in changes and changes["spec"] is None:
            policy.spec = {}
        policy.reason = reason
        new_value = _policy_snapshot(policy)
        if new_value == old_value:
            return policy
        _policy_check(policy, approver_changed="approved_by_id" in changes)
        policy.save()
        _changelog_record(
            org_id=policy.org_id,
            table_name=ChangelogTable.ORG_POLICY,
            record_id=policy.pk,
            change=Change.UPDATED,
            old_value=old_value,
            new_value=new_value,
            reason=reason,
            actor=actor,
        )
    return policy


@transaction.atomic
def org_policy_delete(
    *, policy: OrgRequirementPolicy, actor: User | None, reason: str = ""
) -> None:
    """Delete a policy. Later policies that modified a field it added then change nothing."""
    with org_context(policy.org_id):
        policy = OrgRequirementPolicy.objects.select_for_update().get(pk=policy.pk)
        old_value, record_id = _policy_snapshot(policy), policy.pk
        policy.delete()
        _changelog_record(
            org_id=policy.org_id,
            table_name=ChangelogTable.ORG_POLICY,
            record_id=record_id,
            change=Change.DELETED,
            old_value=old_value,
            new_value=None,
            reason=reason,
            actor=actor,
        )


def _policy_check(policy: OrgRequirementPolicy, *, approver_changed: bool = True) -> None:
    """Refuse a policy the resolver could not apply; all problems in one 400.

    The approver is checked only when it is set: one who has since left or been demoted still
    approved the policy then, and that must not block an edit of something else.
    """
    if policy.endpoint is not None and str(policy.endpoint.org_id) != str(policy.org_id):
        raise NotFound("not_found", "Not found.")
    errors: dict[str, list[str]] = {}
    if not re.fullmatch(FIELD_NAME_PATTERN, policy.field_name or ""):
        errors["field_name"] = [BAD_FIELD_NAME]
    if not (policy.reason or "").strip():
        errors["reason"] = [REASON_REQUIRED]
    _dates_check(errors, policy.effective_date, policy.end_date)
    if policy.operation not in PolicyOperation.values:
        errors["operation"] = [BAD_OPERATION]
    if (
        approver_changed
        and policy.approved_by_id is not None
        and not _is_approver(user_id=policy.approved_by_id, org_id=policy.org_id)
    ):
        errors["approved_by"] = [NOT_AN_APPROVER]
    spec = policy.spec
    spec_errors = _spec_errors(spec, prefix="spec")
    errors.update(spec_errors)
    if policy.operation == PolicyOperation.ADD:
        if isinstance(spec, dict) and "field_type" not in spec:
            errors["spec.field_type"] = [ADD_NEEDS_FIELD_TYPE]
        elif not spec_errors:
            field = field_from_spec(policy.field_name, spec, source="check")
            errors.update(_field_errors(field, prefix="spec"))
    elif policy.operation == PolicyOperation.REMOVE and spec:
        errors["spec"] = [REMOVE_TAKES_NO_SPEC]
    elif policy.operation == PolicyOperation.MODIFY and not spec:
        errors["spec"] = [MODIFY_NEEDS_SPEC]
    if policy.operation != PolicyOperation.ADD and "field_name" not in errors:
        current = _effective_field(policy)
        if current is None:
            errors["field_name"] = [NO_SUCH_FIELD]
        elif policy.operation == PolicyOperation.MODIFY and spec and not spec_errors:
            modified = field_modified(current, spec, source="check")
            errors.update(_field_errors(modified, prefix="spec"))
    if errors:
        raise ApplicationError("invalid", INVALID, errors)


def _effective_field(policy: OrgRequirementPolicy) -> EffectiveField | None:
    """The field the policy names, as it is on its effective date without the policy."""
    if policy.effective_date is None:
        return None
    fields = requirements_effective(
        org_id=policy.org_id,
        task_type=policy.task_type,
        endpoint=policy.endpoint,
        as_of=policy.effective_date,
        exclude_policy_id=policy.pk,
    )
    return next((field for field in fields if field.field_name == policy.field_name), None)


def _is_approver(*, user_id: uuid.UUID, org_id: uuid.UUID) -> bool:
    membership = tenant_selectors.membership_active(user_id=user_id, org_id=org_id)
    return membership is not None and role_at_least(membership.role_id, UserRole.ORG_ADMIN)


def _policy_snapshot(policy: OrgRequirementPolicy) -> dict:
    return {
        "task_type": str(policy.task_type_id),
        "endpoint": policy.endpoint_id,
        "field_name": policy.field_name,
        "operation": policy.operation,
        "spec": policy.spec,
        "effective_date": _iso(policy.effective_date),
        "end_date": _iso(policy.end_date),
        "reason": policy.reason,
        "approved_by": str(policy.approved_by_id) if policy.approved_by_id else None,
    }


# -- payer requirements --------------------------------------------------------------------


@transaction.atomic
def payer_requirement_create(
    *,
    channel_type: ChannelType,
    task_type: TaskType,
    field_name: str,
    spec: dict,
    effective_date: date,
    reason: str,
    actor: User | None,
    end_date: date | None = None,
) -> PayerRequirement:
    """A new version of what a payer asks for one field (platform staff only).

    ``spec`` describes the whole field (label, field_type, rtype, is_array, validation,
    conditional_on); the version is the next one for (payer, task, field).
    """
    errors = field_spec_errors(field_name=field_name, spec=spec)
    if not (reason or "").strip():
        errors["reason"] = [REASON_REQUIRED]
    _dates_check(errors, effective_date, end_date)
    if errors:
        raise ApplicationError("invalid", INVALID, errors)
    # The channel row is locked so that two new versions of one field cannot take one number.
    ChannelType.objects.select_for_update().filter(pk=channel_type.pk).first()
    latest = PayerRequirement.objects.filter(
        channel_type=channel_type, task_type=task_type, field_name=field_name
    ).aggregate(latest=Max("version"))["latest"]
    row = PayerRequirement(
        channel_type=channel_type,
        task_type=task_type,
        field_name=field_name,
        label=spec.get("label") or "",
        field_type=spec["field_type"],
        rtype_id=spec.get("rtype", RequirementType.REQUIRED),
        is_array=spec.get("is_array", False),
        validation={k: v for k, v in (spec.get("validation") or {}).items() if v is not None},
        conditional_on=spec.get("conditional_on"),
        effective_date=effective_date,
        end_date=end_date,
        version=(latest or 0) + 1,
    )
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError as exc:
        raise Conflict("version_conflict", VERSION_CONFLICT) from exc
    _changelog_record(
        org_id=None,
        table_name=ChangelogTable.PAYER_REQUIREMENT,
        record_id=row.pk,
        change=Change.CREATED,
        old_value=None,
        new_value=_payer_snapshot(row, channel_type),
        reason=reason,
        actor=actor,
    )
    return row


def _payer_snapshot(row: PayerRequirement, channel_type: ChannelType) -> dict:
    return {
        "channel_type": channel_type.code,
        "task_type": str(row.task_type_id),
        "field_name": row.field_name,
        "label": row.label,
        "field_type": row.field_type,
        "rtype": row.rtype_id,
        "is_array": row.is_array,
        "validation": row.validation,
        "conditional_on": row.conditional_on,
        "effective_date": _iso(row.effective_date),
        "end_date": _iso(row.end_date),
        "version": row.version,
    }


# -- shared checks -------------------------------------------------------------------------


def field_spec_errors(*, field_name: str, spec: Any) -> dict[str, list[str]]:
    """Every problem of a whole field's description (a payer requirement, or a platform field
    the legacy import brings), by where it is; empty when the field can be stored."""
    errors: dict[str, list[str]] = {}
    if not re.fullmatch(FIELD_NAME_PATTERN, field_name or ""):
        errors["field_name"] = [BAD_FIELD_NAME]
    spec_errors = _spec_errors(spec, prefix="")
    errors.update(spec_errors)
    if isinstance(spec, dict) and "field_type" not in spec:
        errors["field_type"] = [ADD_NEEDS_FIELD_TYPE]
    elif not spec_errors:
        errors.update(_field_errors(field_from_spec(field_name, spec, source="check"), prefix=""))
    return errors


def _changelog_record(
    *,
    org_id: uuid.UUID | None,
    table_name: str,
    record_id: int,
    change: str,
    old_value: dict | None,
    new_value: dict | None,
    reason: str,
    actor: User | None,
) -> RequirementChangelog:
    # unscoped(): a platform row (org NULL) is written whatever organization is in context (or
    # none, from a command); the RLS policy's WITH CHECK still refuses another org's org_id.
    return RequirementChangelog.objects.unscoped().create(
        org_id=org_id,
        table_name=table_name,
        record_id=record_id,
        change=change,
        old_value=old_value,
        new_value=new_value,
        reason=reason,
        changed_by=actor,
    )


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dates_check(errors: dict, effective_date: date | None, end_date: date | None) -> None:
    if effective_date is not None and end_date is not None and end_date <= effective_date:
        errors["end_date"] = [END_NOT_AFTER_START]


def _key(prefix: str, *names: str) -> str:
    return ".".join(name for name in (prefix, *names) if name)


def _spec_errors(spec: Any, *, prefix: str) -> dict[str, list[str]]:
    """Shape and types of a field spec (add, modify, or a payer row)."""
    if not isinstance(spec, dict):
        return {prefix or "spec": [NOT_AN_OBJECT]}
    errors: dict[str, list[str]] = {}
    for key in sorted(set(spec) - set(SPEC_KEYS)):
        errors[_key(prefix, key)] = [UNKNOWN_KEY]
    if "label" in spec:
        label = spec["label"]
        if not isinstance(label, str):
            errors[_key(prefix, "label")] = [NOT_TEXT]
        elif len(label) > 200:
            errors[_key(prefix, "label")] = [TEXT_TOO_LONG]
    if "field_type" in spec and spec["field_type"] not in FieldType.values:
        errors[_key(prefix, "field_type")] = [BAD_FIELD_TYPE]
    if "rtype" in spec and spec["rtype"] not in RequirementType.ordered():
        errors[_key(prefix, "rtype")] = [BAD_RTYPE]
    if "is_array" in spec and not isinstance(spec["is_array"], bool):
        errors[_key(prefix, "is_array")] = [NOT_A_BOOL]
    if spec.get("validation") is not None:
        errors.update(_validation_errors(spec["validation"], prefix=_key(prefix, "validation")))
    if spec.get("conditional_on") is not None and not _is_condition(spec["conditional_on"]):
        errors[_key(prefix, "conditional_on")] = [BAD_CONDITION]
    return errors


def _validation_errors(rules: Any, *, prefix: str) -> dict[str, list[str]]:
    if not isinstance(rules, dict):
        return {prefix: [NOT_AN_OBJECT]}
    errors: dict[str, list[str]] = {}
    for key, value in rules.items():
        message = UNKNOWN_KEY if key not in VALIDATION_KEYS else _rule_error(key, value)
        if message:
            errors[_key(prefix, key)] = [message]
    return errors


def _rule_error(key: str, value: Any) -> str | None:
    """What is wrong with one validation rule's value (None: nothing; a null drops the rule)."""
    if value is None:
        return None
    if key == "pattern":
        if not isinstance(value, str):
            return NOT_TEXT
        try:
            re.compile(value)
        except re.error:
            return BAD_REGEX
    elif key in ("min_length", "max_length"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return NOT_A_COUNT
    elif key in ("min", "max"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return NOT_A_NUMBER
    elif key == "enum":
        if not isinstance(value, list) or not value:
            return BAD_ENUM
        if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
            return BAD_ENUM
    elif key == "date_format":
        return None if _is_date_format(value) else BAD_DATE_FORMAT
    return None


def _is_date_format(value: Any) -> bool:
    # A format that cannot carry a whole date back (just "%Y", or no directive) would accept
    # values that are not dates of service at all.
    if not isinstance(value, str) or "%" not in value:
        return False
    sample = date(2001, 2, 3)
    try:
        return datetime.strptime(sample.strftime(value), value).date() == sample
    except ValueError:
        return False


def _is_condition(condition: Any) -> bool:
    if not isinstance(condition, dict) or not isinstance(condition.get("field"), str):
        return False
    tests = set(condition) - {"field"}
    if len(tests) != 1 or not tests <= {"equals", "in", "present"}:
        return False
    if "in" in condition:
        return isinstance(condition["in"], list) and bool(condition["in"])
    if "present" in condition:
        return isinstance(condition["present"], bool)
    return not isinstance(condition["equals"], dict | list)


def _field_errors(field: EffectiveField, *, prefix: str) -> dict[str, list[str]]:
    """Consistency of the field a spec produces (after merging, for a modify)."""
    errors: dict[str, list[str]] = {}
    rules = field.validation
    if field.field_type == FieldType.SELECT and not rules.get("enum"):
        errors[_key(prefix, "validation", "enum")] = [SELECT_NEEDS_ENUM]
    if field.rtype == RequirementType.CONDITIONAL and field.conditional_on is None:
        errors[_key(prefix, "conditional_on")] = [CONDITIONAL_NEEDS_CONDITION]
    for low, high in (("min_length", "max_length"), ("min", "max")):
        if rules.get(low) is not None and rules.get(high) is not None and rules[low] > rules[high]:
            errors[_key(prefix, "validation", low)] = [MIN_ABOVE_MAX]
    return errors
