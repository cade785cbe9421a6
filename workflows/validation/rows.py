"""The check of one input row against a task's effective fields (types, patterns, conditions).

``RowValidator`` checks rows against a field list that ``requirements_effective`` resolved; it is
built once per list (the regular expressions and messages are prepared then) and is meant to be
reused for every row of a batch. ``requirements_validate`` is the one-row shorthand. It reads
nothing: the field list is all it knows.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from rcm.lookups import RequirementType
from workflows.validation.fields import EffectiveField

DEFAULT_DATE_FORMAT = "%Y-%m-%d"
# Array fields also accept one string with the items separated by "|" or ";" (a CSV cell).
ARRAY_SEPARATORS = re.compile(r"[|;]")

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
