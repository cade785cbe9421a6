"""Reads for an upload: the check of its rows (``RowChecker``, ``RowFlow``) that
``batch_job_upload`` makes before it writes, and, before an upload becomes a batch, the fields
its columns may fill, a guess of which column fills which, and a dry run of the row checks.

The dry run reads the file with the upload's own reader (``workflows.validation.files``) and
checks it with the upload's own checks, so that what the console shows before a batch starts
is exactly what the upload will accept or refuse.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db.models import Exists, OuterRef, QuerySet

from rcm.errors import ApplicationError
from rcm.lookups import RequirementType, WorkflowStatus
from workflows.engine.graph import Graph
from workflows.models import FieldType, InvalidRowPolicy, Workflow, WorkflowRevision
from workflows.selectors.runs import InputCheck, runnable_revision
from workflows.validation.files import (
    MAX_LISTED_ERRORS,
    NO_ROWS,
    TOO_MANY_ROWS,
    ColumnMap,
    Row,
    upload_limits,
    upload_table_read,
)
from workflows.validation.rows import (
    DEFAULT_DATE_FORMAT,
    REQUIRED,
    field_label,
    field_message,
    label_of,
)

# Headers people give the platform's fields (after ``_normalized``: lower case, letters and
# digits only, "#" read as "number"). Field names and labels match by themselves; these are
# the other names billing spreadsheets use.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "member_id": (
        "member",
        "membernumber",
        "memberno",
        "memid",
        "subscriberid",
        "subscribernumber",
        "subscriber",
        "insuredid",
        "policynumber",
        "policyid",
        "idnumber",
    ),
    "patient_first_name": ("firstname", "first", "fname", "givenname", "forename"),
    "patient_last_name": ("lastname", "last", "lname", "surname", "familyname"),
    "patient_dob": ("dob", "dateofbirth", "birthdate", "birthday", "born"),
    "provider_npi": ("npi", "renderingnpi", "renderingprovider", "providerid", "physiciannpi"),
    "service_date": ("dos", "dateofservice", "servicedate", "visitdate"),
    "service_type_code": ("servicetype", "stc", "benefittype"),
    "claim_number": ("claim", "claimno", "claimid", "payerclaimnumber", "icn"),
    "billed_amount": ("billed", "charges", "totalcharges", "amount", "chargeamount"),
    "procedure_codes": ("cpt", "cptcodes", "hcpcs", "procedures", "procedurecode"),
    "diagnosis_codes": ("icd", "icd10", "icdcodes", "diagnoses", "diagnosiscode", "dx"),
    "auth_number": ("authorization", "authno", "authorizationnumber", "priorauth"),
}
# Words a field name starts with that a header usually leaves out ("First name" for
# patient_first_name).
SUBJECT_PREFIXES = ("patient", "member", "provider", "rendering", "subscriber")
FILLED_TWICE = "Columns {columns} would both fill {field}; keep one and ignore the other."
MISSING_COLUMNS = (
    "The file has no column for these required fields: {names}. Rename the columns or map them "
    "with column_map."
)


@dataclass(frozen=True)
class UploadField:
    """A field a column may fill: ``required`` when every row needs it (the upload refuses a
    file without a column for it)."""

    name: str
    label: str
    required: bool


@dataclass(frozen=True)
class RowProblem:
    row: int
    field: str
    message: str


@dataclass(frozen=True)
class UploadCheck:
    """A dry run of an upload: rows read, rows invalid, and the first problems."""

    rows: int
    invalid_rows: int
    problems: list[RowProblem]

    @property
    def valid_rows(self) -> int:
        return self.rows - self.invalid_rows

    @property
    def listed_all(self) -> bool:
        return len(self.problems) < MAX_LISTED_ERRORS


def batch_workflow_choices() -> QuerySet[Workflow]:
    """The organization's workflows a batch can run: active, and published at least once."""
    published = WorkflowRevision.objects.filter(workflow=OuterRef("pk"))
    return Workflow.objects.filter(Exists(published), status_id=WorkflowStatus.ACTIVE).order_by(
        "name"
    )


def batch_upload_fields(*, workflow: Workflow) -> list[UploadField]:
    """The fields of the workflow's latest revision a file's columns fill: the ones every row
    needs first (in the order the upload names them when missing), then the others."""
    checker = _checker(workflow)
    required = checker.required_columns
    names = [*required]
    for field in checker.check.fields:
        if field.is_input and field.field_name not in names:
            names.append(field.field_name)
    return [
        UploadField(name=name, label=checker.labels[name], required=name in required)
        for name in names
    ]


def batch_columns_suggest(
    *, columns: Iterable[str], fields: Iterable[UploadField]
) -> dict[str, str | None]:
    """column -> the field it most likely fills (None: no guess). A header matches a field by
    its name or label, written any way ("Member ID", "member-id", "MEMBER_ID"), by the name
    without its subject ("First name" for patient_first_name), or by a usual synonym ("Member
    #", "DOB", "NPI"). Each field is guessed for one column at most, the first that matches."""
    fields = list(fields)
    names_of = {field.name: _spellings(field) for field in fields}
    taken: set[str] = set()
    guesses: dict[str, str | None] = {}
    for column in columns:
        key = _normalized(column)
        matching = (name for name, spellings in names_of.items() if key in spellings)
        guess = next((name for name in matching if name not in taken), None)
        if guess is not None:
            taken.add(guess)
        guesses[column] = guess
    return guesses


def batch_upload_check(
    *, workflow: Workflow, file: UploadedFile, column_map: ColumnMap
) -> UploadCheck:
    """Read and check every row as ``batch_job_upload`` would, writing nothing: how many rows,
    how many invalid, and the first ``MAX_LISTED_ERRORS`` problems (each a sentence naming its
    field). A file the upload would refuse whole (missing columns, a bad file) raises the
    upload's own error."""
    checker = _checker(workflow)
    table = upload_table_read(upload=file, column_map=column_map, date_formats=checker.date_formats)
    checker.columns_check(table.columns)
    flow = RowFlow(checker=checker, on_invalid=InvalidRowPolicy.SKIP, max_rows=upload_limits()[1])
    for _ in flow.rows(table.records, empty_message=NO_ROWS):
        pass
    problems = [RowProblem(**problem) for problem in flow.errors]
    return UploadCheck(rows=flow.count, invalid_rows=flow.invalid_rows, problems=problems)


def _checker(workflow: Workflow) -> RowChecker:
    revision = runnable_revision(workflow=workflow)
    return RowChecker(graph=Graph.from_snapshot(revision.graph), org_id=workflow.org_id)


def _normalized(text: str) -> str:
    """A header as it is compared: accents off, "#" as "number", lower case, letters and
    digits only."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", text.lower().replace("#", "number"))


def _spellings(field: UploadField) -> set[str]:
    spellings = {_normalized(field.name), _normalized(field.label)}
    words = field.name.split("_")
    if len(words) > 1 and words[0] in SUBJECT_PREFIXES:
        spellings.add(_normalized("".join(words[1:])))
    spellings.update(SYNONYMS.get(field.name, ()))
    return spellings - {""}


def column_map_of(fills: Mapping[str, str | None]) -> dict[str, str | None]:
    """The upload's ``column_map`` for what each column fills: a field (the column is renamed
    to it) or None (left out); a column filling a field of its own name needs no entry."""
    return {column: field for column, field in fills.items() if field != column}


def column_fill_problems(
    *, fills: Mapping[str, str | None], fields: Iterable[UploadField]
) -> tuple[list[str], list[UploadField]]:
    """What stops an upload mapped this way: (fields two columns would fill, as sentences;
    required fields no column fills)."""
    fields = list(fields)
    labels = {field.name: field.label for field in fields}
    by_target: dict[str, list[str]] = {}
    for column, field in fills.items():
        if field is not None:
            by_target.setdefault(field, []).append(column)
    clashes = [
        FILLED_TWICE.format(columns=" and ".join(columns), field=labels.get(target, target))
        for target, columns in by_target.items()
        if len(columns) > 1
    ]
    unfilled = [field for field in fields if field.required and field.name not in by_target]
    return clashes, unfilled


# -- checking rows --------------------------------------------------------------------------


class RowChecker:
    """A run's input check (``InputCheck``) for every row of a file, plus what a file
    needs on top: the columns every row must have, and the date formats of its cells."""

    def __init__(self, *, graph: Graph, org_id):
        self.check = InputCheck(graph=graph, org_id=org_id)
        self.required_columns = list(self.check.required_data)
        self.date_formats: dict[str, str] = {}
        self.labels = {name: field_label(name) for name in self.required_columns}
        for field in self.check.fields:
            if not field.is_input:
                continue
            self.labels[field.field_name] = label_of(field)
            if field.field_type == FieldType.DATE:
                self.date_formats[field.field_name] = (
                    field.validation.get("date_format") or DEFAULT_DATE_FORMAT
                )
            always_required = field.rtype == RequirementType.REQUIRED and not field.conditional_on
            if always_required and field.field_name not in self.required_columns:
                self.required_columns.append(field.field_name)

    def columns_check(self, columns: list[str]) -> None:
        """A file must have a column for every field each row needs (one error, not N)."""
        missing = [name for name in self.required_columns if name not in columns]
        if missing:
            unmapped = [name for name in columns if name not in self.required_columns]
            raise ApplicationError(
                "missing_columns",
                MISSING_COLUMNS.format(names=", ".join(missing)),
                {"missing_columns": missing, "unmapped_columns": unmapped[:MAX_LISTED_ERRORS]},
            )

    def missing_message(self, name: str) -> str:
        return field_message(self.labels.get(name) or field_label(name), REQUIRED)

    def problems(self, row: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(field, message) for everything wrong with the row; blank cells are absent."""
        found = self.check.problems(dict(row))
        return [(name, self.missing_message(name)) for name in found.get("missing", [])] + [
            (name, message)
            for name, messages in found.get("errors", {}).items()
            for message in messages
        ]


class RowFlow:
    """Checked rows on their way to ``batch_job_create``, counted.

    With ``reject`` no row is passed on after the first invalid one (the upload will be refused
    and rolled back, so inserting more would be wasted), but reading goes on to count them all.
    """

    def __init__(self, *, checker: RowChecker, on_invalid: str, max_rows: int):
        self.checker = checker
        self.reject = on_invalid == InvalidRowPolicy.REJECT
        self.max_rows = max_rows
        self.count = 0
        self.invalid_rows = 0
        self.errors: list[dict] = []

    def rows(self, records: Iterator[tuple[int, dict]], *, empty_message: str) -> Iterator[Row]:
        for row_number, cells in records:
            self.count += 1
            if self.count > self.max_rows:
                message = TOO_MANY_ROWS.format(limit=self.max_rows)
                raise ApplicationError(
                    "too_many_rows", message, {"limit_rows": self.max_rows}, status=413
                )
            problems = self.checker.problems(cells)
            if problems:
                self.invalid_rows += 1
                room = MAX_LISTED_ERRORS - len(self.errors)
                self.errors += [
                    {"row": row_number, "field": name, "message": message}
                    for name, message in problems[:room]
                ]
            if not self.reject:
                # Each message is a sentence naming its field.
                error = " ".join(message for _, message in problems)
                yield Row(row_number=row_number, input_data=cells, error=error)
            elif not self.invalid_rows:
                yield Row(row_number=row_number, input_data=cells)
        if self.count == 0:
            raise ApplicationError("no_rows", empty_message)
