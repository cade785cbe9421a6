"""The v3 ENUM values (and enum-like text columns) and the V8 values they become.

Two kinds of vocabulary:

- **Open** ones are lookup tables the platform extends with rows (task domains and actions,
  organization types): a v3 value missing from the lookup becomes a new row of it, and the
  report lists it. That is what lookups replaced ENUMs for.
- **Closed** ones are values code gives a meaning to (a job's status drives the feeder, a
  role grants privileges, a credential log's access type is checked): a v3 value must be one
  of V8's, directly or through a rename the import knows (``queued`` → ``pending``). Any
  other value cannot be guessed.

A value that fits nowhere (unknown to a closed vocabulary, deprecated in v3, not a
well-formed name) rejects the rows that use it, and the report says to map it: ``--map FILE``
(JSON or YAML) names, per vocabulary, what a v3 value becomes, e.g.
``{"task_action": {"status_check": "status_check_legacy"}, "job_status": {"retrying": "pending"}}``.
The ``portal_type`` section maps v3 portal codes to V8 channel type codes, to join a v3 portal
with a channel type the platform already has.

Every value is resolved once, before any row is imported (``prepare``), and the lookup rows
it needs are created then, in the same transaction as the rest of the platform's catalogue.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dbadmin.command import CannotRun
from rcm.lookups import JobStatus, LookupModel, TaskSignatureSource, UserRole
from tenants.models import EndpointKind, OrgTypeLu
from webactions.models import AccessType
from workflows.models import ItemStatus, TaskActionLu, TaskDomainLu

# A lookup key the import may create: what the seeded values look like.
WELL_FORMED = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# A channel type code (a slug, tenants.ChannelType.code).
CHANNEL_CODE = re.compile(r"^[-a-z0-9_]{1,64}$")
NEW_LOOKUP_DESCRIPTION = "Added by rcm_import_legacy: a value of the v3 database."

BUILT_IN = "built in"
FROM_MAP = "--map"
NEW_ROW = "new lookup row"


@dataclass(frozen=True)
class Vocabulary:
    """A v3 ENUM type (or text column) and where its values go in V8."""

    name: str  # the v3 type's name, and the --map section
    # The v3 columns holding it, as (table, column).
    columns: tuple[tuple[str, str], ...]
    lookup: type[LookupModel] | None = None  # open: the lookup new values become rows of
    closed: tuple[str, ...] = ()  # closed: the V8 values there are
    renames: dict[str, str] = field(default_factory=dict)
    # Values v3 itself deprecated, with what the report suggests they become.
    deprecated: dict[str, str] = field(default_factory=dict)

    def target_problem(self, target) -> str | None:
        """Why ``target`` cannot be what a v3 value becomes (None: it can)."""
        if not isinstance(target, str):
            return "is not text"
        if self.lookup is not None:
            return None if WELL_FORMED.match(target) else "is not a lower-case name"
        return None if target in self.closed else f"is not one of {', '.join(self.closed)}"


VOCABULARIES = {
    vocabulary.name: vocabulary
    for vocabulary in (
        Vocabulary("org_type", (("organization", "org_type"),), lookup=OrgTypeLu),
        Vocabulary("user_role", (("app_user", "role"),), closed=tuple(UserRole.ordered())),
        Vocabulary(
            "job_status",
            (("batch_job", "status"), ("batch_row", "status")),
            closed=tuple(JobStatus.ordered()),
            renames={
                "queued": JobStatus.PENDING,
                "success": JobStatus.COMPLETED,
                "error": JobStatus.FAILED,
            },
        ),
        Vocabulary(
            "task_signature_source",
            (("task_signature", "source"),),
            closed=tuple(TaskSignatureSource.ordered()),
            renames={"ai": TaskSignatureSource.AI_GENERATED},
        ),
        Vocabulary(
            "task_domain",
            (("task_type", "domain"), ("task_signature", "domain")),
            lookup=TaskDomainLu,
        ),
        Vocabulary(
            "task_action",
            (("task_type", "action"), ("task_signature", "action")),
            lookup=TaskActionLu,
            deprecated={
                "status_check": "status_check_legacy, or status_check",
                "denial_follow_up": "denial_followup",
            },
        ),
        Vocabulary(
            "endpoint_kind", (("portal_type", "endpoint_kind"),), closed=tuple(EndpointKind.values)
        ),
        Vocabulary(
            "access_type",
            (("credential_access_log", "access_type"),),
            closed=tuple(AccessType.values),
        ),
    )
}
PORTAL_TYPE = "portal_type"

# A batch row's status in V8's words: an item runs where a job processes.
ITEM_STATUS = {
    JobStatus.PENDING: ItemStatus.PENDING,
    JobStatus.PROCESSING: ItemStatus.RUNNING,
    JobStatus.COMPLETED: ItemStatus.COMPLETED,
    JobStatus.FAILED: ItemStatus.FAILED,
    JobStatus.CANCELLED: ItemStatus.CANCELLED,
}


class Unmapped(Exception):  # noqa: N818 - a row's outcome, not a bug
    """A v3 value the import cannot place; the message says why and what to do."""


@dataclass(frozen=True)
class Placed:
    """What a v3 value became, and by which rule (built in, --map, a new lookup row)."""

    vocabulary: str
    value: str
    target: str
    how: str


def map_file_read(path: str) -> dict[str, dict[str, str]]:
    """The --map file, checked: sections are vocabularies (or portal_type), each an object of
    v3 value → V8 value. A bad file stops the import before anything is read (exit 2)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CannotRun(f"Cannot read the map file {path}: {exc.strerror}.") from exc
    try:
        document = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise CannotRun(f"The map file {path} is neither valid JSON nor YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise CannotRun(f"The map file {path} must hold an object of sections.")
    problems = []
    for section, entries in document.items():
        if section != PORTAL_TYPE and section not in VOCABULARIES:
            known = ", ".join([*VOCABULARIES, PORTAL_TYPE])
            problems.append(f"{section!r} is not a section (those are: {known})")
            continue
        if not isinstance(entries, dict):
            problems.append(f"{section} must be an object of v3 value: V8 value")
            continue
        for value, target in entries.items():
            if section == PORTAL_TYPE:
                is_code = isinstance(target, str) and CHANNEL_CODE.match(target)
                problem = None if is_code else "is not a channel type code"
            else:
                problem = VOCABULARIES[section].target_problem(target)
            if problem:
                problems.append(f"{section}.{value}: {target!r} {problem}")
    if problems:
        raise CannotRun(f"The map file {path} has problems: {'; '.join(problems)}.")
    return {
        section: {str(k): v for k, v in entries.items()} for section, entries in document.items()
    }


class ValueMap:
    """Every v3 value of the source, resolved once: to a V8 value or to the reason it is not."""

    def __init__(self, mapping: dict[str, dict[str, str]]):
        self.mapping = mapping
        self.resolved: dict[str, dict[str, str]] = {}
        self.unmapped: dict[str, dict[str, str]] = {}
        self.placed: list[Placed] = []

    def prepare(self, distinct_values: dict[str, set[str]]) -> None:
        """Resolve the values the source holds (per vocabulary) and create the lookup rows
        the open vocabularies need. Runs inside the catalogue's transaction."""
        for name, vocabulary in VOCABULARIES.items():
            resolved, unmapped = (
                self.resolved.setdefault(name, {}),
                self.unmapped.setdefault(name, {}),
            )
            existing = (
                set(vocabulary.lookup.objects.values_list("pk", flat=True))
                if vocabulary.lookup is not None
                else set(vocabulary.closed)
            )
            for value in sorted(distinct_values.get(name, ())):
                try:
                    target, how = self._place(vocabulary, value, existing)
                except Unmapped as exc:
                    unmapped[value] = str(exc)
                    continue
                if vocabulary.lookup is not None and target not in existing:
                    vocabulary.lookup.objects.create(
                        pk=target, description=NEW_LOOKUP_DESCRIPTION, sort_order=len(existing) + 1
                    )
                    existing.add(target)
                    how = NEW_ROW if how == "" else f"{how}, {NEW_ROW}"
                resolved[value] = target
                if how:
                    self.placed.append(Placed(name, value, target, how))

    def _place(self, vocabulary: Vocabulary, value: str, existing: set[str]) -> tuple[str, str]:
        """(the V8 value, how it was found: "" when it is the same word already in V8)."""
        mapped = self.mapping.get(vocabulary.name, {})
        if value in mapped:
            return mapped[value], FROM_MAP
        hint = f'map it with --map ({{"{vocabulary.name}": {{"{value}": ...}}}})'
        if value in vocabulary.deprecated:
            raise Unmapped(
                f"{vocabulary.name} {value!r} is deprecated in v3: say what it becomes "
                f"(perhaps {vocabulary.deprecated[value]}); {hint}"
            )
        if value in vocabulary.renames:
            return vocabulary.renames[value], BUILT_IN
        if value in existing:
            return value, ""
        if vocabulary.lookup is not None and WELL_FORMED.match(value):
            return value, ""
        if vocabulary.lookup is not None:
            raise Unmapped(f"{vocabulary.name} {value!r} is not a well-formed name; {hint}")
        raise Unmapped(
            f"{vocabulary.name} {value!r} is not one of V8's ({', '.join(vocabulary.closed)}); "
            f"{hint}"
        )

    def __call__(self, vocabulary: str, value: str | None) -> str:
        """The V8 value of ``value``, or Unmapped with the reason (a row is then rejected)."""
        if value is None:
            raise Unmapped(f"{vocabulary} is missing (NULL)")
        try:
            return self.resolved[vocabulary][value]
        except KeyError:
            reason = self.unmapped.get(vocabulary, {}).get(value)
            raise Unmapped(reason or f"{vocabulary} {value!r} was not resolved") from None

    def channel_code(self, legacy_code: str) -> str | None:
        """The V8 channel type code the --map file gives a v3 portal code, if any."""
        return self.mapping.get(PORTAL_TYPE, {}).get(legacy_code)
