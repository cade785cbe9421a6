"""Input and output serializers of batch jobs, and the results CSV's cells."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from rcm.api.parsers import JSONInputError, JSONMalformed, json_loads
from rcm.api.serializers import PageQuery, StrictInputSerializer
from rcm.lookups import JobStatus
from workflows.models import InvalidRowPolicy, ItemStatus
from workflows.selectors import batch as selectors
from workflows.validation.files import MAX_COLUMNS

MAX_PROMPT_CHARS = 10_000
MAX_FIELD_NAME_CHARS = 200
COLUMN_MAP_NOT_OBJECT = "Expected a JSON object of file column -> field name (or null)."
COLUMN_MAP_BLANK = "Column and field names must be non-blank text (or null to leave a column out)."
COLUMN_MAP_TOO_LONG = f"At most {MAX_COLUMNS} columns can be mapped."
COLUMN_MAP_NAME_TOO_LONG = f"A field name is at most {MAX_FIELD_NAME_CHARS} characters."


# -- input ----------------------------------------------------------------------------------


class ColumnMapField(serializers.Field):
    """``{"file column": "field name"}``: an object in a JSON body, its JSON text in a form. A
    column mapped to null is left out of the rows (a column the task does not take)."""

    default_error_messages = {
        "not_object": COLUMN_MAP_NOT_OBJECT,
        "blank": COLUMN_MAP_BLANK,
        "too_long": COLUMN_MAP_TOO_LONG,
        "name_too_long": COLUMN_MAP_NAME_TOO_LONG,
    }

    def to_internal_value(self, data) -> dict[str, str | None]:
        if isinstance(data, str):
            try:
                data = json_loads(data)
            except JSONMalformed:
                self.fail("not_object")
            except JSONInputError as exc:
                raise serializers.ValidationError(str(exc)) from None
        if not isinstance(data, dict):
            self.fail("not_object")
        if len(data) > MAX_COLUMNS:
            self.fail("too_long")
        mapped = {}
        for column, field in data.items():
            if not column.strip():
                self.fail("blank")
            if field is None:
                mapped[column.strip()] = None
                continue
            if not isinstance(field, str) or not field.strip():
                self.fail("blank")
            if len(field.strip()) > MAX_FIELD_NAME_CHARS:
                self.fail("name_too_long")
            mapped[column.strip()] = field.strip()
        return mapped

    def to_representation(self, value):
        return value


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": MAX_COLUMNS,
        "additionalProperties": {
            "type": "string",
            "nullable": True,
            "minLength": 1,
            "maxLength": MAX_FIELD_NAME_CHARS,
            "pattern": r"\S",
        },
    }
)
class ColumnMapObjectField(ColumnMapField):
    pass


@extend_schema_field(
    {
        "type": "string",
        "description": 'A JSON object as text: {"Member ID": "member_id", "Notes": null} '
        "(null leaves the column out).",
    }
)
class ColumnMapTextField(ColumnMapField):
    pass


class BatchJobCreateInput(StrictInputSerializer):
    workflow = serializers.UUIDField(help_text="A published, active workflow of yours.")
    max_concurrency = serializers.IntegerField(min_value=1, max_value=100, default=4)
    on_invalid = serializers.ChoiceField(
        choices=InvalidRowPolicy.choices,
        default=InvalidRowPolicy.REJECT,
        help_text="reject: any invalid row refuses the upload (400, nothing created); "
        "skip: invalid rows become failed items, valid rows run.",
    )
    prompt = serializers.CharField(
        max_length=MAX_PROMPT_CHARS, allow_blank=True, default="", help_text="A description."
    )


class BatchJobFileInput(BatchJobCreateInput):
    file = serializers.FileField(
        allow_empty_file=True,  # the upload service says what is wrong with an empty file
        max_length=255,
        help_text="CSV (UTF-8 with or without BOM, or Windows-1252) or Excel .xlsx; the first "
        "row is the header.",
    )
    column_map = ColumnMapTextField(required=False)


class BatchJobRowsInput(BatchJobCreateInput):
    rows = serializers.ListField(
        child=serializers.DictField(), help_text="One object per row: field name -> value."
    )
    column_map = ColumnMapObjectField(required=False)


class BatchJobListFilter(PageQuery):
    workflow = serializers.UUIDField(required=False)
    status = serializers.ChoiceField(choices=JobStatus.ordered(), required=False)
    since = serializers.DateTimeField(required=False, help_text="Created at or after.")
    until = serializers.DateTimeField(required=False, help_text="Created before.")


class BatchJobItemFilter(PageQuery):
    status = serializers.ChoiceField(choices=ItemStatus.values, required=False)


# -- output ---------------------------------------------------------------------------------


class BatchProgressOutput(serializers.Serializer):
    percent_done = serializers.FloatField(help_text="Processed rows / total rows, in percent.")
    rows_per_second = serializers.FloatField(
        allow_null=True, help_text="Rows processed per second since the first row started."
    )
    eta_seconds = serializers.IntegerField(
        allow_null=True, help_text="Remaining rows at that speed; 0 once the job has ended."
    )
    estimated_completion_at = serializers.DateTimeField(allow_null=True)


class BatchJobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    workflow_id = serializers.UUIDField()
    revision_id = serializers.IntegerField()
    task_type_id = serializers.UUIDField(allow_null=True)
    endpoint_id = serializers.IntegerField(allow_null=True)
    status = serializers.CharField(source="status_id")
    prompt = serializers.CharField()
    file_name = serializers.CharField()
    max_concurrency = serializers.IntegerField()
    on_invalid = serializers.CharField()
    total_rows = serializers.IntegerField()
    pending_rows = serializers.IntegerField()
    running_rows = serializers.IntegerField()
    successful_rows = serializers.IntegerField()
    failed_rows = serializers.IntegerField()
    cancelled_rows = serializers.IntegerField()
    processed_rows = serializers.IntegerField()
    cancel_requested = serializers.BooleanField()
    progress = serializers.SerializerMethodField()
    created_by_id = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(BatchProgressOutput)
    def get_progress(self, job) -> dict:
        return BatchProgressOutput(selectors.batch_job_progress(job=job)).data


class BatchJobItemOutput(serializers.Serializer):
    id = serializers.IntegerField()
    row_number = serializers.IntegerField(help_text="1 = the first row under the header.")
    status = serializers.CharField()
    input = serializers.JSONField(source="input_data")
    output = serializers.JSONField(source="output_data", allow_null=True)
    error = serializers.CharField(source="error_message")
    attempts = serializers.IntegerField()
    run_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)


# -- results CSV ----------------------------------------------------------------------------

# OWASP "CSV injection": a spreadsheet executes a cell starting with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# ... except a plain number ("-5", "+1.5e3"), which it reads as a number.
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value: Any) -> str:
    """A value as a results cell: lists as "a|b" (what an upload reads back as an array),
    objects as JSON, and anything a spreadsheet would execute prefixed with a quote."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list) and all(not isinstance(item, dict | list) for item in value):
        text = "|".join("" if item is None else str(item) for item in value)
    elif isinstance(value, dict | list):
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    else:
        text = str(value)
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def results_csv_lines(rows: Iterable[list]) -> Iterator[str]:
    """CSV text, one line per row, starting with a UTF-8 byte-order mark (without one, Excel
    reads UTF-8 as the local code page: é and ñ come out garbled)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff"
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
