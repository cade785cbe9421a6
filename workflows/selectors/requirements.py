"""Reads for requirements: the effective fields of a task, and the check of one input row.

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

Without an endpoint only the platform rows and the policies for every portal apply.

``RowValidator`` checks rows against a resolved field list; it is built once per list (the
regular expressions and messages are prepared then) and is meant to be reused for every row of
a batch. ``requirements_validate`` is the one-row shorthand.
"""

from __future__ import annotations

import dataclasses
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

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

DEFAULT_DATE_FORMAT = "%Y-%m-%d"
# Array fields also accept one string with the items separated by "|" or ";" (a CSV cell).
ARRAY_SEPARATORS = re.compile(r"[|;]")
SOURCE_PLATFORM = "platform"

# Row-check messages: "{subject} {problem}." where the subject is the field's label (or "Item 2
# of <label>" in an array), so that a message reads the same in the API, a failed row's error
# and the console. They never quote the value: rows carry patient data.
MESSAGE = "{subject} {problem}."
ITEM_SUBJECT = "Item {index} of {label}"
REQUIRED = "is required"
NOT_SINGLE = "takes one value, not a list"
NOT_TEXT = "must be text"
NOT_A_DATE = "must look like {example}"
NOT_A_NUMBER = "must be a number"
NOT_A_BOOLEAN = "must be yes or no (true/false and 1/0 work too)"
NOT_IN_CHOICES = "must be one of {choices}"
NOT_IN_MANY_CHOICES = "must be one of the {count} allowed values"
PATTERN_MISMATCH = "is not in the expected format"
TOO_SHORT = "must be at least {length} long"
TOO_LONG = "must be at most {length} long"
TOO_SMALL = "must be at least {min}"
TOO_LARGE = "must be at most {max}"
# A date every format can show unambiguously (day above 12), as the example of a date message.
EXAMPLE_DATE = date(1980, 4, 30)
# Choices listed in a message up to this many; a longer list is only counted.
LISTED_CHOICES = 12
# Words a field name abbreviates that people write in capitals.
ACRONYMS = {"id", "npi", "dob", "dos", "ssn", "cpt", "icd", "hcpcs", "carc", "rarc", "tin", "ein"}

# A payer's rtype replaces the field's only when it asks for more than this rank.
RTYPE_STRICTNESS = {
    RequirementType.OPTIONAL: 0,
    RequirementType.CONDITIONAL: 1,
    RequirementType.REQUIRED: 2,
}


@dataclasses.dataclass(frozen=True)
class EffectiveField:
    """One field of the effective set, with the layers that shaped it (``sources``)."""

    field_name: str
    label: str
    field_type: str
    rtype: str
    is_array: bool = False
    validation: dict[str, Any] = dataclasses.field(default_factory=dict)
    conditional_on: dict[str, Any] | None = None
    display_order: int = 0
    path: str = ""
    sources: tuple[str, ...] = ()

    @property
    def is_input(self) -> bool:
        return self.rtype != RequirementType.OUTPUT


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
        fields[row.field_name] = EffectiveField(
            field_name=row.field_name,
            label=row.label or row.field_name,
            field_type=row.field_type,
            rtype=row.rtype_id,  # type: ignore[arg-type]  # NOT NULL; the stubs say optional
            is_array=row.is_array,
            validation=dict(row.validation or {}),
            conditional_on=row.conditional_on,
            display_order=row.display_order,
            path=row.path or row.field_name,
            sources=(source,),
        )
    return fields


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
            fields[row.field_name] = EffectiveField(
                field_name=row.field_name,
                label=row.label or row.field_name,
                field_type=row.field_type,
                rtype=row.rtype_id,  # type: ignore[arg-type]  # NOT NULL; the stubs say optional
                is_array=row.is_array,
                validation=_merged({}, row.validation),
                conditional_on=row.conditional_on,
                display_order=_next_order(fields),
                path=row.field_name,
                sources=(source,),
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


# -- row validation ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ValidationResult:
    """What is wrong with one row: absent fields, fields the task does not take, bad values."""

    missing: list[str]
    unknown: list[str]
    errors: dict[str, list[str]]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unknown or self.errors)

    def as_dict(self) -> dict:
        return {
            "valid": self.ok,
            "missing": self.missing,
            "unknown": self.unknown,
            "errors": self.errors,
        }


class _Invalid(Exception):
    """A value that is not of the field's type (internal to the checks)."""


def _is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple):
        return all(_is_blank(item) for item in value)
    return False


def _condition_value(value: Any) -> str:
    """The form a value is compared in for conditional_on (CSV cells are all text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text.lower() if text.lower() in ("true", "false") else text


def _condition_check(condition: Mapping | None) -> Callable[[Mapping], bool] | None:
    if condition is None:
        return None
    name = condition["field"]
    if "present" in condition:
        wanted = bool(condition["present"])
        return lambda row: (not _is_blank(row.get(name))) == wanted
    expected = condition["in"] if "in" in condition else [condition.get("equals")]
    accepted = {_condition_value(value) for value in expected}

    def holds(row: Mapping) -> bool:
        value = row.get(name)
        return not _is_blank(value) and _condition_value(value) in accepted

    return holds


_NUMBER_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _as_text(value: Any) -> tuple[str, str]:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise _Invalid(NOT_TEXT)
    text = value.strip() if isinstance(value, str) else str(value)
    return text, text


def _as_number(value: Any) -> tuple[str, float]:
    if isinstance(value, bool):
        raise _Invalid(NOT_A_NUMBER)
    if isinstance(value, int | float | Decimal):
        number = float(value)
    elif isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        raise _Invalid(NOT_A_NUMBER)
    if not math.isfinite(number):
        raise _Invalid(NOT_A_NUMBER)
    return str(value).strip(), number


def _as_boolean(value: Any) -> tuple[str, bool]:
    if isinstance(value, bool):
        return str(value).lower(), value
    if isinstance(value, int) and value in (0, 1):
        return str(value), bool(value)
    if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
        return value.strip(), _BOOLEANS[value.strip().lower()]
    raise _Invalid(NOT_A_BOOLEAN)


def _date_parser(date_format: str) -> Callable[[Any], tuple[str, date]]:
    message = NOT_A_DATE.format(example=EXAMPLE_DATE.strftime(date_format))
    iso = date_format == DEFAULT_DATE_FORMAT

    def parse(value: Any) -> tuple[str, date]:
        if isinstance(value, datetime):
            return value.strftime(date_format), value.date()
        if isinstance(value, date):
            return value.strftime(date_format), value
        if not isinstance(value, str):
            raise _Invalid(message)
        text = value.strip()
        try:
            if iso and _ISO_DATE.fullmatch(text):
                return text, date.fromisoformat(text)  # the common case, ~10x strptime's speed
            return text, datetime.strptime(text, date_format).date()
        except ValueError as exc:
            raise _Invalid(message) from exc

    return parse


class _FieldCheck:
    """One field's checks, prepared once: parse by type, then each validation rule."""

    def __init__(self, field: EffectiveField):
        self.field = field
        self.label = label_of(field)
        self.is_array = field.is_array
        rules = field.validation or {}
        self.parse = self._parser(field.field_type, rules)
        self.rules = self._rules(field.field_type, rules)
        self.condition = _condition_check(field.conditional_on)

    @staticmethod
    def _parser(field_type: str, rules: Mapping) -> Callable[[Any], tuple[str, Any]]:
        if field_type == "date":
            return _date_parser(rules.get("date_format") or DEFAULT_DATE_FORMAT)
        if field_type == "number":
            return _as_number
        if field_type == "boolean":
            return _as_boolean
        return _as_text  # text and select

    @staticmethod
    def _rules(field_type: str, rules: Mapping) -> list[Callable[[str, Any], str | None]]:
        checks: list[Callable[[str, Any], str | None]] = []
        if rules.get("pattern"):
            regex = re.compile(rules["pattern"])
            checks.append(lambda text, _: None if regex.fullmatch(text) else PATTERN_MISMATCH)
        if rules.get("min_length") is not None:
            shortest = rules["min_length"]
            short = TOO_SHORT.format(length=_characters(shortest))
            checks.append(lambda text, _: short if len(text) < shortest else None)
        if rules.get("max_length") is not None:
            longest = rules["max_length"]
            long = TOO_LONG.format(length=_characters(longest))
            checks.append(lambda text, _: long if len(text) > longest else None)
        if field_type == "number" and rules.get("min") is not None:
            low, small = float(rules["min"]), TOO_SMALL.format(min=rules["min"])
            checks.append(lambda _, number: small if number < low else None)
        if field_type == "number" and rules.get("max") is not None:
            high, large = float(rules["max"]), TOO_LARGE.format(max=rules["max"])
            checks.append(lambda _, number: large if number > high else None)
        if rules.get("enum") is not None:
            choices = {str(choice) for choice in rules["enum"]}
            outside = _choices_problem([str(choice) for choice in rules["enum"]])
            checks.append(lambda text, _: None if text in choices else outside)
        return checks

    def required(self, row: Mapping) -> bool:
        rtype = self.field.rtype
        if rtype == RequirementType.REQUIRED:
            return self.condition is None or self.condition(row)
        if rtype == RequirementType.CONDITIONAL:
            return self.condition is not None and self.condition(row)
        return False

    def items(self, value: Any) -> list[Any]:
        """The values to check: one, or each item of an array field (blank items dropped)."""
        if not self.is_array:
            return [value]
        if isinstance(value, str):
            value = ARRAY_SEPARATORS.split(value)
        elif not isinstance(value, list | tuple):
            value = [value]
        return [item for item in value if not _is_blank(item)]

    def errors(self, values: list[Any]) -> list[str]:
        if not self.is_array:
            return [field_message(self.label, problem) for problem in self._problems(values[0])]
        messages = []
        for index, item in enumerate(values, start=1):
            subject = ITEM_SUBJECT.format(index=index, label=self.label)
            messages += [field_message(subject, problem) for problem in self._problems(item)]
        return messages

    def _problems(self, value: Any) -> list[str]:
        if isinstance(value, list | tuple):
            return [NOT_SINGLE]
        try:
            text, parsed = self.parse(value)
        except _Invalid as exc:
            return [str(exc)]
        return [problem for check in self.rules if (problem := check(text, parsed))]


def _characters(count: int) -> str:
    return "1 character" if count == 1 else f"{count} characters"


def _choices_problem(choices: list[str]) -> str:
    if len(choices) > LISTED_CHOICES:
        return NOT_IN_MANY_CHOICES.format(count=len(choices))
    return NOT_IN_CHOICES.format(choices=", ".join(choices))


def field_label(field_name: str) -> str:
    """How people name a field that has no label of its own: ``member_id`` is "Member ID"."""
    words = [word.upper() if word in ACRONYMS else word for word in field_name.split("_") if word]
    text = " ".join(words) or field_name
    return text[:1].upper() + text[1:]


def label_of(field: EffectiveField) -> str:
    """The field's label, or its name in words when the label is only the name again."""
    if field.label and field.label != field.field_name:
        return field.label
    return field_label(field.field_name)


def field_message(subject: str, problem: str) -> str:
    """One sentence about one field: "Patient date of birth must look like 1980-04-30."."""
    return MESSAGE.format(subject=subject[:1].upper() + subject[1:], problem=problem)


class RowValidator:
    """Checks rows against one effective field list; build it once, call it per row."""

    def __init__(self, fields: Iterable[EffectiveField]):
        self.checks = {field.field_name: _FieldCheck(field) for field in fields if field.is_input}

    def validate(self, row: Mapping[str, Any]) -> ValidationResult:
        checks = self.checks
        unknown = sorted(str(name) for name in row if name not in checks)
        missing: list[str] = []
        errors: dict[str, list[str]] = {}
        for name, check in checks.items():
            value = row.get(name)
            values = [] if _is_blank(value) else check.items(value)
            if not values:
                if check.required(row):
                    missing.append(name)
                continue
            messages = check.errors(values)
            if messages:
                errors[name] = messages
        return ValidationResult(missing=missing, unknown=unknown, errors=errors)


def requirements_validate(*, fields: Iterable[EffectiveField], row: Mapping) -> ValidationResult:
    """Check one row. For many rows, build a ``RowValidator`` once and reuse it."""
    return RowValidator(fields).validate(row)
