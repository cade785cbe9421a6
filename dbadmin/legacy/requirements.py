"""v3 field requirements: a row per (task type, portal or all portals, version), listing the
required and the optional field names, with per-field rules in ``field_metadata``.

The active row of the highest version counts; the others are skipped (inactive, or superseded).
Each of its fields becomes:

- for all portals (``portal_id`` NULL): a platform ``field_requirement`` row (the field a task
  type needs everywhere) — unless V8 already defines that field for that task type, in which
  case the platform's own is kept;
- for one portal (an organization's endpoint): an ``org_requirement_policy`` of that
  organization narrowed to that endpoint, adding the field (an add replaces a platform field of
  the same name), through the requirements service, which checks it and logs it in
  ``requirement_changelog``.

A field's rules become its V8 spec: ``type`` (or what the rules imply: ``date_format`` a
date, ``enum`` a select, ``min``/``max`` a number), ``label``, ``is_array``, and the
validation rules V8 knows (pattern, min_length, max_length, enum, min, max, date_format).
A field whose rules V8 refuses (a pattern that is not one, "ten" where a number goes) is
rejected by itself, with the rule at fault named; its row's other fields are imported.
"""

from __future__ import annotations

import json

from dbadmin.legacy.idmap import IdMap, digest
from rcm.errors import ApplicationError
from rcm.lookups import RequirementType
from tenants.models import Endpoint
from workflows.models import FieldRequirement, FieldType, OrgRequirementPolicy, PolicyOperation
from workflows.services import requirements as requirement_services

PLATFORM_PATH, ORG_PATH = "field_requirement", "org_requirement"
IMPORT_REASON = "Imported from v3 field requirement {id} (version {version})."
# What v3 deployments wrote for a field's type, in V8's words.
FIELD_TYPES = {
    "string": FieldType.TEXT,
    "str": FieldType.TEXT,
    "integer": FieldType.NUMBER,
    "int": FieldType.NUMBER,
    "float": FieldType.NUMBER,
    "decimal": FieldType.NUMBER,
    "bool": FieldType.BOOLEAN,
    "enum": FieldType.SELECT,
}
SPEC_ATTRIBUTES = ("label", "is_array", "conditional_on")

QUERY = """
SELECT requirement_id, task_type_id, portal_id, required_fields, optional_fields,
       field_metadata, version, active, created_at, md5(r::text) AS row_md5,
       (active AND version = max(version) FILTER (WHERE active)
            OVER (PARTITION BY task_type_id, portal_id)) AS counts
  FROM field_requirement r
 WHERE {where}
 ORDER BY task_type_id, portal_id, version DESC, requirement_id
"""


def import_platform_fields(main, platform: IdMap) -> None:
    existing = {
        (row.task_type_id, row.field_name): row
        for row in FieldRequirement.objects.filter(channel_type__isnull=True)
    }
    for row in main.source.all(QUERY.format(where="portal_id IS NULL")):
        for field_name, spec in _fields(main.report, PLATFORM_PATH, row):
            task_type = main.catalogue.task_types.get(str(row.task_type_id))
            legacy_id = f"{row.task_type_id}:{field_name}"
            if task_type is None:
                main.report.reject(PLATFORM_PATH, legacy_id, "its task type was not imported")
                continue
            _platform_field(main, platform, existing, task_type, legacy_id, field_name, spec)


def _platform_field(main, platform, existing, task_type, legacy_id, field_name, spec) -> None:
    report = main.report
    row_hash = digest(_canonical(spec), task_type.pk)
    entry = platform.get("field_requirement", "field_requirement", legacy_id)
    current = existing.get((task_type.pk, field_name))
    values = {
        "label": spec.get("label") or "",
        "field_type": spec["field_type"],
        "rtype_id": spec["rtype"],
        "is_array": spec.get("is_array", False),
        "validation": spec.get("validation") or {},
        "conditional_on": spec.get("conditional_on"),
    }
    if current is None:
        order = 10 * (1 + sum(1 for key in existing if key[0] == task_type.pk))
        current = FieldRequirement.objects.create(
            task_type=task_type,
            channel_type=None,
            field_name=field_name,
            path=field_name,
            display_order=order,
            **values,
        )
        existing[task_type.pk, field_name] = current
        outcome = "created"
    elif entry is None:
        report.skip(
            PLATFORM_PATH,
            legacy_id,
            f"V8 defines {field_name!r} for {task_type} already: the platform's is kept",
        )
        return
    elif entry.row_hash == row_hash:
        report.tally(PLATFORM_PATH, "unchanged")
        return
    else:
        FieldRequirement.objects.filter(pk=current.pk).update(**values)
        outcome = "updated"
    platform.record("field_requirement", "field_requirement", [(legacy_id, current.pk, row_hash)])
    report.tally(PLATFORM_PATH, outcome)


def import_org_policies(run) -> None:
    """The organization's per-portal requirements (run inside its endpoints' step)."""
    if not run.endpoints:
        return
    policies = {policy.pk: policy for policy in OrgRequirementPolicy.objects.all()}
    endpoints = {endpoint.pk: endpoint for endpoint in Endpoint.objects.all()}
    query = QUERY.format(where="portal_id = ANY(%s)")
    for row in run.source.all(query, [list(run.endpoints)]):
        for field_name, spec in _fields(run.report, ORG_PATH, row):
            legacy_id = f"{row.task_type_id}:{row.portal_id}:{field_name}"
            task_type = run.catalogue.task_types.get(str(row.task_type_id))
            if task_type is None:
                run.report.reject(ORG_PATH, legacy_id, "its task type was not imported")
                continue
            endpoint = endpoints[run.endpoints[row.portal_id][0]]
            _org_policy(run, policies, row, task_type, endpoint, legacy_id, field_name, spec)


def _org_policy(run, policies, row, task_type, endpoint, legacy_id, field_name, spec) -> None:
    effective = (row.created_at or run.now).date()
    reason = IMPORT_REASON.format(id=row.requirement_id, version=row.version)
    row_hash = digest(_canonical(spec), task_type.pk, endpoint.pk, effective, reason)
    entry = run.idmap.get("field_requirement", "org_requirement_policy", legacy_id)
    if entry is not None and entry.row_hash == row_hash:
        run.report.tally(ORG_PATH, "unchanged")
        return
    policy = policies.get(int(entry.target_id)) if entry is not None else None
    try:
        if policy is None:
            policy = requirement_services.org_policy_create(
                org_id=run.org_id,
                task_type=task_type,
                endpoint=endpoint,
                field_name=field_name,
                operation=PolicyOperation.ADD,
                spec=spec,
                effective_date=effective,
                reason=reason,
                actor=None,
            )
            outcome = "created"
        else:
            policy = requirement_services.org_policy_update(
                policy=policy, actor=None, reason=reason, spec=spec, effective_date=effective
            )
            outcome = "updated"
    except ApplicationError as exc:
        run.report.reject(ORG_PATH, legacy_id, _problems(exc.details) or exc.message)
        return
    run.idmap.record(
        "field_requirement", "org_requirement_policy", [(legacy_id, policy.pk, row_hash)]
    )
    run.report.tally(ORG_PATH, outcome)


def _fields(report, path: str, row) -> list[tuple[str, dict]]:
    """The fields of a v3 requirement row as (name, V8 spec); the rows that do not count,
    the fields that cannot be read, and what is left out of them are reported here."""
    required, optional = _names(row.required_fields), _names(row.optional_fields)
    # A row's count is its fields' (at least one: a row naming none still counts as read).
    size = max(len(required or ()) + len(optional or ()), 1)
    report.read(path, size)
    if not row.counts:
        why = "inactive" if not row.active else "superseded by a higher active version"
        report.skip(path, row.requirement_id, f"version {row.version} is {why}", count=size)
        return []
    if required is None or optional is None:
        report.reject(
            path,
            row.requirement_id,
            "required_fields and optional_fields must be lists of names",
            count=size,
        )
        return []
    metadata = row.field_metadata if isinstance(row.field_metadata, dict) else {}
    if not isinstance(row.field_metadata, dict):
        report.note(path, row.requirement_id, "field_metadata is not an object: no rules kept")
    fields, seen = [], set()
    named = [(name, RequirementType.REQUIRED) for name in required]
    for name, rtype in named + [(name, RequirementType.OPTIONAL) for name in optional]:
        if name in seen:
            report.note(path, row.requirement_id, f"{name!r} is both required and optional")
            report.tally(path, "skipped")
            continue
        seen.add(name)
        legacy_id = f"{row.requirement_id}:{name}"
        spec, left_out = _spec(metadata.get(name), rtype)
        if left_out:
            report.note(path, legacy_id, f"rules V8 has no place for, left out: {left_out}")
        problems = requirement_services.field_spec_errors(field_name=name, spec=spec)
        if problems:
            report.reject(path, legacy_id, f"field_metadata: {_problems(problems)}")
            continue
        fields.append((name, spec))
    return fields


def _names(value) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(name, str) for name in value):
        return value
    return None if value is not None else []


def _spec(rules, rtype: str) -> tuple[dict, str]:
    """(the V8 spec of one field's v3 rules, the rule names left out)."""
    rules = rules if isinstance(rules, dict) else {}
    declared = rules.get("type", rules.get("field_type"))
    validation = {key: rules[key] for key in requirement_services.VALIDATION_KEYS if key in rules}
    spec: dict = {"field_type": _field_type(declared, validation), "rtype": rtype}
    spec.update({key: rules[key] for key in SPEC_ATTRIBUTES if key in rules})
    if validation:
        spec["validation"] = validation
    known = {"type", "field_type", *SPEC_ATTRIBUTES, *requirement_services.VALIDATION_KEYS}
    return spec, ", ".join(sorted(str(key) for key in rules if key not in known))


def _field_type(declared, validation: dict):
    if declared is not None:
        return FIELD_TYPES.get(declared, declared) if isinstance(declared, str) else declared
    if "date_format" in validation:
        return FieldType.DATE
    if "enum" in validation:
        return FieldType.SELECT
    if "min" in validation or "max" in validation:
        return FieldType.NUMBER
    return FieldType.TEXT


def _problems(details: dict) -> str:
    return "; ".join(f"{key}: {' '.join(messages)}" for key, messages in details.items())


def _canonical(spec: dict) -> str:
    return json.dumps(spec, sort_keys=True, default=str)
