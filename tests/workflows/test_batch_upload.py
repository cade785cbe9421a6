"""Uploading a batch: formats, encodings, column map, row checks, limits, and bad input."""

import datetime as dt
import io
import json
import tracemalloc
import zipfile

import openpyxl
import pytest
from django.core.files.uploadedfile import (
    InMemoryUploadedFile,
    SimpleUploadedFile,
    TemporaryUploadedFile,
)
from django.db import connection

from rcm.api import parsers
from rcm.context import org_context
from rcm.errors import ApplicationError
from tests.workflows import hostile_files
from tests.workflows.engine_helpers import published
from workflows.models import BatchJob, BatchJobItem, TaskType, Workflow
from workflows.services import batch_upload
from workflows.validation import files

pytestmark = pytest.mark.django_db

URL = "/api/v2/batch-jobs/"
ELIGIBILITY_HEADER = "member_id,patient_first_name,patient_last_name,patient_dob,provider_npi"
GOOD_ROW = "W123456,Ada,Lovelace,1990-12-10,1234567893"


@pytest.fixture
def operator(api, org_a):
    return api(org_a, "operator")


@pytest.fixture
def simple_workflow(org_a):
    return published(org_a.id, "start>done", required_data=["member_id", "name"])[0]


@pytest.fixture
def eligibility_workflow(org_a):
    task_type = TaskType.objects.get(domain="eligibility", action="check")
    return published(org_a.id, "start>done", task_type_id=str(task_type.pk))[0]


def _upload(client, workflow, content: bytes, name="rows.csv", **fields):
    upload = SimpleUploadedFile(name, content)
    body = {"workflow": str(workflow.pk), "file": upload, **fields}
    return client.post(URL, body, format="multipart")


def _items(org, job_id) -> list[BatchJobItem]:
    with org_context(org.id):
        return list(BatchJobItem.objects.filter(batch_job_id=job_id).order_by("row_number"))


def _nothing_written(org) -> bool:
    with org_context(org.id):
        return not BatchJob.objects.exists() and not BatchJobItem.objects.exists()


def _refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code, error
    return error


# -- formats and encodings --------------------------------------------------------------------


def test_a_csv_becomes_a_job_with_one_item_per_row(operator, org_a, simple_workflow):
    content = b"member_id,name,note\r\n W1 ,Ada,\r\n\r\nW2,Bob,hi\r\n"
    response = _upload(operator, simple_workflow, content, prompt="March eligibility")
    assert response.status_code == 201, response.json()
    job = response.json()
    assert (job["total_rows"], job["pending_rows"], job["status"]) == (2, 2, "pending")
    assert job["file_name"] == "rows.csv" and job["prompt"] == "March eligibility"
    items = _items(org_a, job["id"])
    # The blank line is skipped but keeps its number; text is stripped; empty cells are absent.
    assert [(item.row_number, item.input_data) for item in items] == [
        (1, {"member_id": "W1", "name": "Ada"}),
        (3, {"member_id": "W2", "name": "Bob", "note": "hi"}),
    ]


def test_a_utf8_bom_is_not_part_of_the_first_column(operator, org_a, simple_workflow):
    content = "member_id,name\nW1,Zoë\n".encode("utf-8-sig")
    response = _upload(operator, simple_workflow, content)
    assert response.status_code == 201, response.json()
    assert _items(org_a, response.json()["id"])[0].input_data == {"member_id": "W1", "name": "Zoë"}


def test_a_windows_1252_file_is_read_as_such(operator, org_a, simple_workflow):
    content = "member_id,name\nW1,José Muñoz\nW2,Renée – “Ré”\n".encode("cp1252")
    response = _upload(operator, simple_workflow, content)
    assert response.status_code == 201, response.json()
    names = [item.input_data["name"] for item in _items(org_a, response.json()["id"])]
    assert names == ["José Muñoz", "Renée – “Ré”"]


def _xlsx(rows) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_an_excel_workbook_is_read_with_dates_in_the_fields_format(
    operator, org_a, eligibility_workflow
):
    header = ELIGIBILITY_HEADER.split(",") + ["service_date", "visits"]
    content = _xlsx(
        [
            header,
            ["W123456", "Ada", "Lovelace", dt.date(1990, 12, 10), 1234567893, None, 3],
            [None] * 7,
            ["W654321", "  Bob ", "Ng", dt.datetime(1985, 1, 2), "1234567893", "", 1.5],
        ]
    )
    response = _upload(operator, eligibility_workflow, content, name="march.xlsx")
    assert response.status_code == 201, response.json()
    items = _items(org_a, response.json()["id"])
    assert [item.row_number for item in items] == [1, 3]
    assert items[0].input_data == {
        "member_id": "W123456",
        "patient_first_name": "Ada",
        "patient_last_name": "Lovelace",
        "patient_dob": "1990-12-10",
        "provider_npi": 1234567893,
        "visits": 3,
    }
    assert items[1].input_data["patient_first_name"] == "Bob"
    assert items[1].input_data["patient_dob"] == "1985-01-02"


def test_the_column_map_renames_file_columns(operator, org_a, simple_workflow):
    content = b"Member ID,Patient,Other\nW1,Ada,x\n"
    column_map = json.dumps({"Member ID": "member_id", "Patient": "name"})
    response = _upload(operator, simple_workflow, content, column_map=column_map)
    assert response.status_code == 201, response.json()
    assert _items(org_a, response.json()["id"])[0].input_data == {
        "member_id": "W1",
        "name": "Ada",
        "Other": "x",
    }


def test_a_column_mapped_to_null_is_left_out(operator, org_a, simple_workflow):
    """A column the task does not take stays out of the rows: the console's "ignore"."""
    content = b"member_id,Patient,Notes,name\nW1,Ada,call back,x\n"
    column_map = json.dumps({"Patient": None, "Notes": None})
    response = _upload(operator, simple_workflow, content, column_map=column_map)
    assert response.status_code == 201, response.json()
    assert _items(org_a, response.json()["id"])[0].input_data == {"member_id": "W1", "name": "x"}
    # Left out, a column no longer clashes with the one mapped to its name.
    clash = b"member_id,Member #,name\nW1,W2,x\n"
    column_map = json.dumps({"member_id": None, "Member #": "member_id"})
    response = _upload(operator, simple_workflow, clash, column_map=column_map)
    assert response.status_code == 201, response.json()
    assert _items(org_a, response.json()["id"])[0].input_data["member_id"] == "W2"
    rows = {"workflow": str(simple_workflow.pk), "rows": [{"member_id": "W3", "name": "y", "x": 1}]}
    response = operator.post(URL, {**rows, "column_map": {"x": None}}, "json")
    assert response.status_code == 201, response.json()
    assert _items(org_a, response.json()["id"])[0].input_data == {"member_id": "W3", "name": "y"}


def test_json_rows_with_a_column_map(operator, org_a, simple_workflow):
    body = {
        "workflow": str(simple_workflow.pk),
        "rows": [{"id": "W1", "name": " Ada ", "tags": ["a", "b"]}, {"id": "W2", "name": "Bob"}],
        "column_map": {"id": "member_id"},
        "max_concurrency": 2,
    }
    response = operator.post(URL, body, "json")
    assert response.status_code == 201, response.json()
    assert response.json()["max_concurrency"] == 2
    items = _items(org_a, response.json()["id"])
    assert items[0].input_data == {"member_id": "W1", "name": "Ada", "tags": ["a", "b"]}


# -- checking rows ----------------------------------------------------------------------------


def test_reject_lists_row_field_and_message_and_writes_nothing(
    operator, org_a, eligibility_workflow
):
    content = "\n".join(
        [
            ELIGIBILITY_HEADER,
            GOOD_ROW,
            "W_123,Ada,Lovelace,1990-13-45,123",
            ",Bob,Ng,1985-01-02,1234567893",
        ]
    ).encode()
    error = _refused(_upload(operator, eligibility_workflow, content), 400, "invalid_rows")
    assert error["details"]["invalid_row_count"] == 2
    assert error["details"]["rows"] == [
        {"row": 2, "field": "member_id", "message": "Member ID is not in the expected format."},
        {
            "row": 2,
            "field": "patient_dob",
            "message": "Patient date of birth must look like 1980-04-30.",
        },
        {
            "row": 2,
            "field": "provider_npi",
            "message": "Rendering provider NPI is not in the expected format.",
        },
        {"row": 3, "field": "member_id", "message": "Member ID is required."},
    ]
    assert _nothing_written(org_a)


def test_reject_lists_the_first_100_errors_and_counts_every_invalid_row(
    operator, org_a, simple_workflow
):
    content = b"member_id,name\n" + b"W1,\n" * 150 + b"W2,Ada\n"
    error = _refused(_upload(operator, simple_workflow, content), 400, "invalid_rows")
    assert error["details"]["invalid_row_count"] == 150
    assert len(error["details"]["rows"]) == 100
    assert error["details"]["rows"][-1] == {
        "row": 100,
        "field": "name",
        "message": "Name is required.",
    }
    assert _nothing_written(org_a)


def test_skip_makes_invalid_rows_failed_items_carrying_their_errors(
    operator, org_a, eligibility_workflow
):
    content = "\n".join([ELIGIBILITY_HEADER, GOOD_ROW, "W123,Ada,Lovelace,1990-13-45,"])
    content = content.encode()
    response = _upload(operator, eligibility_workflow, content, on_invalid="skip")
    assert response.status_code == 201, response.json()
    job = response.json()
    assert (job["total_rows"], job["pending_rows"], job["failed_rows"]) == (2, 1, 1)
    assert job["on_invalid"] == "skip"
    good, bad = _items(org_a, job["id"])
    assert (good.status, good.error_message) == ("pending", "")
    assert bad.status == "failed"
    assert bad.error_message == (
        "Rendering provider NPI is required. Patient date of birth must look like 1980-04-30."
    )


def test_an_optional_field_left_empty_is_valid(operator, org_a, eligibility_workflow):
    content = f"{ELIGIBILITY_HEADER},service_type_code\n{GOOD_ROW},\n".encode()
    response = _upload(operator, eligibility_workflow, content)
    assert response.status_code == 201, response.json()


def test_a_required_field_without_a_column_is_named_once(operator, org_a, eligibility_workflow):
    content = b"memberid,patient_first_name,patient_last_name,patient_dob\nW1,A,B,1990-01-01\n"
    error = _refused(_upload(operator, eligibility_workflow, content), 400, "missing_columns")
    assert error["details"] == {
        "missing_columns": ["member_id", "provider_npi"],
        "unmapped_columns": ["memberid"],
    }
    assert _nothing_written(org_a)


# -- bad input --------------------------------------------------------------------------------


def test_an_empty_file_is_refused(operator, org_a, simple_workflow):
    _refused(_upload(operator, simple_workflow, b""), 400, "empty_file")
    _refused(_upload(operator, simple_workflow, b"\r\n\n"), 400, "empty_file")
    assert _nothing_written(org_a)


def test_a_header_without_rows_is_refused(operator, org_a, simple_workflow):
    error = _refused(_upload(operator, simple_workflow, b"member_id,name\n\n,\n"), 400, "no_rows")
    assert error["message"] == files.NO_ROWS
    assert _nothing_written(org_a)


def test_duplicate_headers_are_refused(operator, org_a, simple_workflow):
    content = b"member_id,name,member_id\nW1,A,W2\n"
    error = _refused(_upload(operator, simple_workflow, content), 400, "duplicate_header")
    assert error["details"] == {"columns": ["member_id"]}


def test_columns_mapped_onto_the_same_field_are_duplicates(operator, org_a, simple_workflow):
    content = b"member_id,Member,name\nW1,W2,A\n"
    response = _upload(operator, simple_workflow, content, column_map='{"Member": "member_id"}')
    _refused(response, 400, "duplicate_header")


def test_a_blank_header_is_refused(operator, org_a, simple_workflow):
    content = b"member_id,,name, \nW1,x,A,y\n"
    error = _refused(_upload(operator, simple_workflow, content), 400, "blank_header")
    assert error["details"] == {"columns": [2, 4]}


def test_a_ragged_row_is_refused_naming_it(operator, org_a, simple_workflow):
    content = b"member_id,name\nW1,A\nW2,B,extra\n"
    error = _refused(_upload(operator, simple_workflow, content), 400, "ragged_row")
    assert error["details"] == {"row": 2, "line": 3, "expected": 2}
    assert error["message"] == "Row 2 (line 3) has 3 cells; the header has 2."
    assert _nothing_written(org_a)


def test_undecodable_bytes_are_refused_naming_where(operator, org_a, simple_workflow):
    content = b"member_id,name\nW1,Ada\nW2,B\x81b\n"
    error = _refused(_upload(operator, simple_workflow, content), 400, "undecodable")
    assert error["details"] == {"offset": 26, "line": 3, "byte": "0x81"}


def test_a_utf16_file_is_refused_as_not_plain_text(operator, org_a, simple_workflow):
    content = "member_id,name\nW1,Ada\n".encode("utf-16")
    _refused(_upload(operator, simple_workflow, content), 400, "binary_file")


def test_a_one_megabyte_cell_is_refused(operator, org_a, simple_workflow):
    content = b"member_id,name\nW1," + b"x" * 1_000_000 + b"\n"
    error = _refused(_upload(operator, simple_workflow, content), 400, "cell_too_large")
    assert error["details"]["line"] == 2
    assert _nothing_written(org_a)


def test_a_cell_over_excels_limit_is_refused_naming_row_and_column(
    operator, org_a, simple_workflow
):
    content = b"member_id,name\nW1,A\nW2," + b"x" * 40_000 + b"\n"
    error = _refused(_upload(operator, simple_workflow, content), 400, "cell_too_large")
    assert error["details"] == {"row": 2, "column": "name", "limit": 32_767}


def test_a_line_without_end_is_refused(operator, org_a, simple_workflow):
    content = b"member_id,name\n" + b"x," * (files.MAX_LINE_CHARS // 2 + 1)
    _refused(_upload(operator, simple_workflow, content), 400, "line_too_long")


def test_ten_thousand_columns_are_refused(operator, org_a, simple_workflow):
    header = ",".join(f"c{n}" for n in range(10_000))
    content = f"{header}\n{','.join('1' * 10_000)}\n".encode()
    error = _refused(_upload(operator, simple_workflow, content), 400, "too_many_columns")
    assert error["details"] == {"limit_columns": files.MAX_COLUMNS}


def test_a_file_over_the_size_limit_is_413(operator, org_a, simple_workflow, settings):
    settings.BATCH_MAX_UPLOAD_BYTES = 2_000
    content = b"member_id,name\n" + b"W1,Ada\n" * 400
    error = _refused(_upload(operator, simple_workflow, content), 413, "file_too_large")
    assert "at most 2000 bytes" in error["message"]
    json_body = {"workflow": str(simple_workflow.pk), "rows": [{"member_id": "W1"}] * 400}
    _refused(operator.post(URL, json_body, "json"), 413, "file_too_large")
    assert _nothing_written(org_a)


def test_more_rows_than_the_limit_is_413(operator, org_a, simple_workflow, settings):
    settings.BATCH_MAX_ROWS = 5
    content = b"member_id,name\n" + b"W1,Ada\n" * 6
    error = _refused(_upload(operator, simple_workflow, content), 413, "too_many_rows")
    assert error["details"] == {"limit_rows": 5}
    body = {"workflow": str(simple_workflow.pk), "rows": [{"member_id": "W1", "name": "A"}] * 6}
    _refused(operator.post(URL, body, "json"), 413, "too_many_rows")
    assert (
        _upload(operator, simple_workflow, b"member_id,name\n" + b"W1,A\n" * 5).status_code == 201
    )


def test_a_file_that_is_not_a_workbook_is_refused(operator, org_a, simple_workflow):
    _refused(
        _upload(operator, simple_workflow, b"PK\x03\x04garbage", "a.xlsx"), 400, "invalid_xlsx"
    )
    legacy = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100
    _refused(_upload(operator, simple_workflow, legacy, "a.xls"), 400, "unsupported_file_type")


def test_an_excel_row_beyond_the_header_is_ragged(operator, org_a, simple_workflow):
    content = _xlsx([["member_id", "name"], ["W1", "A"], ["W2", "B", None, "stray"]])
    error = _refused(_upload(operator, simple_workflow, content, "a.xlsx"), 400, "ragged_row")
    assert error["details"] == {"row": 2, "line": 3, "expected": 2}


def test_a_column_map_naming_an_absent_column_is_refused(operator, simple_workflow):
    response = _upload(operator, simple_workflow, b"a,b\n1,2\n", column_map='{"nope": "name"}')
    error = _refused(response, 400, "invalid_column_map")
    assert error["details"] == {
        "column_map": ["column_map names columns the file does not have: nope."]
    }


@pytest.mark.parametrize("column_map", ["not json", "[1]", '{"a": ""}', '{"a": 1}'])
def test_a_malformed_column_map_is_refused(operator, simple_workflow, column_map):
    response = _upload(operator, simple_workflow, b"a\n1\n", column_map=column_map)
    assert set(_refused(response, 400, "invalid")["details"]) == {"column_map"}


@pytest.mark.parametrize(
    "fields",
    [
        {},  # neither rows nor a file
        {"rows": [{"a": 1}], "workflow": None},
        {"rows": [{"a": 1}], "workflow": "not-a-uuid"},
        {"rows": "x"},
        {"rows": [1]},
        {"rows": [{"a": 1}], "max_concurrency": 0},
        {"rows": [{"a": 1}], "max_concurrency": 101},
        {"rows": [{"a": 1}], "on_invalid": "ignore"},
        {"rows": [{"a": 1}], "extra": 1},
    ],
)
def test_bad_json_requests_are_400(operator, org_a, simple_workflow, fields):
    body = {"workflow": str(simple_workflow.pk), **fields}
    body = {name: value for name, value in body.items() if value is not None}
    _refused(operator.post(URL, body, "json"), 400, "invalid")
    assert _nothing_written(org_a)


def test_empty_json_rows_are_refused(operator, org_a, simple_workflow):
    body = {"workflow": str(simple_workflow.pk), "rows": []}
    error = _refused(operator.post(URL, body, "json"), 400, "no_rows")
    assert error["message"] == files.NO_JSON_ROWS


@pytest.mark.parametrize(
    "text, message", [("W\u00001", parsers.JSON_HAS_NUL), ("\ud800", parsers.JSON_HAS_SURROGATE)]
)
def test_text_postgresql_cannot_store_is_refused(operator, org_a, simple_workflow, text, message):
    # The API's JSON parser refuses it for every body (tests/rcm/test_parsers.py).
    rows = [{"member_id": "W1", "name": "A"}, {"member_id": "W2", "name": ["x", text]}]
    body = json.dumps({"workflow": str(simple_workflow.pk), "rows": rows})
    response = operator.post(URL, body, content_type="application/json")
    error = _refused(response, 400, "parse_error")
    assert error["message"] == message
    assert _nothing_written(org_a)


def test_a_multipart_upload_without_a_file_is_400(operator, simple_workflow):
    response = operator.post(URL, {"workflow": str(simple_workflow.pk)}, format="multipart")
    assert set(_refused(response, 400, "invalid")["details"]) == {"file"}


@pytest.mark.parametrize("status", ["draft", "archived", "suspended"])
def test_a_workflow_that_is_not_active_takes_no_upload(operator, org_a, simple_workflow, status):
    with org_context(org_a.id):
        Workflow.objects.filter(pk=simple_workflow.pk).update(status_id=status)
    _refused(
        _upload(operator, simple_workflow, b"member_id,name\nW1,A\n"), 409, "workflow_not_active"
    )


def test_a_workflow_never_published_takes_no_upload(operator, org_a):
    with org_context(org_a.id):
        workflow = Workflow.objects.create(org_id=org_a.id, name="draft", status_id="active")
    _refused(_upload(operator, workflow, b"a\n1\n"), 409, "workflow_not_published")


# -- streaming ---------------------------------------------------------------------------------


def test_a_large_upload_spooled_to_a_temporary_file_is_read_from_it(
    operator, org_a, simple_workflow, settings
):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
    rows = "".join(f"W{n},Renée {n}\r\n" for n in range(5_000))
    content = ("member_id,name\r\n" + rows).encode("cp1252")
    response = _upload(operator, simple_workflow, content)
    assert response.status_code == 201, response.json()
    assert response.json()["total_rows"] == 5_000
    with org_context(org_a.id):
        last = BatchJobItem.objects.get(batch_job_id=response.json()["id"], row_number=5_000)
    assert last.input_data == {"member_id": "W4999", "name": "Renée 4999"}


def _spooled(content: bytes, name: str) -> TemporaryUploadedFile:
    upload = TemporaryUploadedFile(name, "application/octet-stream", len(content), None)
    upload.write(content)
    upload.seek(0)
    return upload


def _peak_while_reading(content: bytes, name: str) -> tuple[int, int]:
    upload = _spooled(content, name)
    tracemalloc.start()
    try:
        table = files.upload_table_read(upload=upload)
        count = sum(1 for _ in table.records)
        return tracemalloc.get_traced_memory()[1], count
    finally:
        tracemalloc.stop()
        upload.close()


def test_reading_a_csv_takes_the_same_memory_for_ten_times_the_rows():
    def content(count):
        rows = "".join(f"W{n},name {n},{'x' * 40}\n" for n in range(count))
        return f"member_id,name,note\n{rows}".encode()

    small_peak, large_peak = _peaks(content, "rows.csv")
    assert large_peak < small_peak * 1.5 + 256 * 1024, (small_peak, large_peak)


def test_reading_a_workbook_streams_its_rows():
    # Not quite constant: openpyxl's read-only parser keeps each parsed (and emptied) row
    # element until the sheet ends, about 70 bytes a row, and the shared-strings table (every
    # distinct text once). The rows themselves (here 3 cells, 50 characters) are not kept.
    def content(count):
        return _xlsx([["member_id", "name", "note"]] + [[n, "Ada", "x" * 40] for n in range(count)])

    small_peak, large_peak = _peaks(content, "rows.xlsx")
    assert (large_peak - small_peak) / 18_000 < 150, (small_peak, large_peak)


def _peaks(content, name) -> tuple[int, int]:
    """Peak memory while reading 2,000 rows, then 20,000."""
    small_peak, small_count = _peak_while_reading(content(2_000), name)
    large_peak, large_count = _peak_while_reading(content(20_000), name)
    assert (small_count, large_count) == (2_000, 20_000)
    return small_peak, large_peak


# -- bounded input: hostile files ---------------------------------------------------------------
# Each of these once took tens of seconds or gigabytes (docs/benchmarks.md, upload limits); each
# is now refused from what the file declares, before its rows are read, and writes nothing.

MEMORY_CEILING = 100 * 1024 * 1024


def _peak_of_reading(content: bytes, name: str) -> tuple[int, str]:
    """Peak traced memory while the upload is read, and the code it was refused with."""
    upload = _spooled(content, name)
    tracemalloc.start()
    try:
        with pytest.raises(ApplicationError) as refused:
            table = files.upload_table_read(upload=upload)
            sum(1 for _ in table.records)
        return tracemalloc.get_traced_memory()[1], refused.value.code
    finally:
        tracemalloc.stop()
        upload.close()


def test_a_sheet_declaring_row_100_million_is_413_before_a_row_is_read(
    operator, org_a, simple_workflow
):
    content = hostile_files.xlsx_row_gap(row=100_000_000)
    assert len(content) < 5_000
    error = _refused(_upload(operator, simple_workflow, content, "gap.xlsx"), 413, "too_many_rows")
    assert error["message"] == files.SHEET_ROWS_DECLARED.format(
        part=hostile_files.SHEET_PATH,
        row=100_000_000,
        ref="A1:B100000000",
        last=100_001,
        limit=100_000,
    )
    assert error["details"] == {
        "limit_rows": 100_000,
        "part": hostile_files.SHEET_PATH,
        "row": 100_000_000,
    }
    assert _nothing_written(org_a)


def test_a_sheet_whose_rows_jump_to_row_100_million_is_413(operator, org_a, simple_workflow):
    content = hostile_files.xlsx_row_gap(row=100_000_000, dimension=False)
    error = _refused(_upload(operator, simple_workflow, content, "gap.xlsx"), 413, "too_many_rows")
    assert error["message"] == files.SHEET_ROW_BEYOND.format(
        part=hostile_files.SHEET_PATH, row=100_000_000, last=100_001, limit=100_000
    )
    assert _nothing_written(org_a)


def test_blank_rows_of_a_sheet_count_toward_the_row_limit(
    operator, org_a, simple_workflow, settings
):
    settings.BATCH_MAX_ROWS = 5
    over = hostile_files.xlsx_row_gap(row=7, dimension=False)  # the header and 6 rows, 4 blank
    _refused(_upload(operator, simple_workflow, over, "gap.xlsx"), 413, "too_many_rows")
    within = hostile_files.xlsx_row_gap(row=6)
    response = _upload(operator, simple_workflow, within, "gap.xlsx")
    assert response.status_code == 201, response.json()
    assert [item.row_number for item in _items(org_a, response.json()["id"])] == [1, 5]


def test_a_zip_bomb_is_refused_from_its_headers_without_inflating_it(
    operator, org_a, simple_workflow
):
    content = hostile_files.xlsx_inflating(inflated_bytes=1 << 30)
    assert len(content) < 1_200_000
    error = _refused(
        _upload(operator, simple_workflow, content, "bomb.xlsx"), 400, "xlsx_compression_ratio"
    )
    assert error["details"] == {"part": hostile_files.SHEET_PATH}
    assert error["message"].startswith(f"Part {hostile_files.SHEET_PATH} of the workbook inflates")
    assert _nothing_written(org_a)
    peak, code = _peak_of_reading(content, "bomb.xlsx")
    assert (code, peak < MEMORY_CEILING) == ("xlsx_compression_ratio", True), peak


def test_a_part_whose_header_understates_its_size_is_cut_off_there(
    operator, org_a, simple_workflow
):
    # The header says 4 KB: zipfile stops inflating there and the CRC fails, 50 MB unread.
    content = hostile_files.xlsx_inflating(inflated_bytes=50 << 20, declared_bytes=4096)
    _refused(_upload(operator, simple_workflow, content, "lying.xlsx"), 400, "invalid_xlsx")
    assert _nothing_written(org_a)
    peak, code = _peak_of_reading(content, "lying.xlsx")
    assert (code, peak < 10 * 1024 * 1024) == ("invalid_xlsx", True), peak


def test_a_workbook_inflating_past_the_limit_is_413(operator, org_a, simple_workflow, monkeypatch):
    monkeypatch.setattr(files, "MAX_XLSX_INFLATED_BYTES", 20_000)
    content = _xlsx([["member_id", "name"]] + [[f"W{n}", "Ada"] for n in range(500)])
    error = _refused(_upload(operator, simple_workflow, content, "a.xlsx"), 413, "xlsx_too_large")
    assert error["details"] == {"limit_bytes": 20_000}
    assert _nothing_written(org_a)


def test_a_stretch_of_xml_longer_than_any_cell_is_refused(
    operator, org_a, simple_workflow, monkeypatch
):
    monkeypatch.setattr(files, "MAX_XML_TOKEN_BYTES", 1_000)
    content = hostile_files.xlsx_inflating(inflated_bytes=5_000)
    error = _refused(
        _upload(operator, simple_workflow, content, "a.xlsx"), 400, "xlsx_oversized_xml"
    )
    assert error["details"] == {"part": hostile_files.SHEET_PATH}
    assert "more than 1000 bytes without an element" in error["message"]


def _rezipped(content: bytes, *, compression: int = zipfile.ZIP_DEFLATED, extra=()) -> bytes:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(content)) as source,
        zipfile.ZipFile(buffer, "w", compression) as target,
    ):
        for name in source.namelist():
            target.writestr(name, source.read(name))
        for name, data in extra:
            target.writestr(name, data)
    return buffer.getvalue()


def test_a_part_compressed_with_bzip2_is_refused(operator, org_a, simple_workflow):
    content = _rezipped(
        _xlsx([["member_id", "name"], ["W1", "Ada"]]), compression=zipfile.ZIP_BZIP2
    )
    error = _refused(
        _upload(operator, simple_workflow, content, "a.xlsx"), 400, "xlsx_compression_method"
    )
    assert "compressed with method 12" in error["message"]


def test_a_workbook_directory_of_thousands_of_parts_is_refused(operator, org_a, simple_workflow):
    padding = [(f"xl/media/{n:036d}.png", b"") for n in range(15_000)]
    content = _rezipped(_xlsx([["member_id", "name"], ["W1", "Ada"]]), extra=padding)
    error = _refused(
        _upload(operator, simple_workflow, content, "a.xlsx"), 400, "xlsx_directory_too_large"
    )
    assert f"at most {files.MAX_XLSX_DIRECTORY_BYTES} bytes" in error["message"]


def test_a_part_declaring_a_document_type_is_refused_unless_a_picture(
    operator, org_a, simple_workflow
):
    doctype = b'<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY lol "lol">]><x>&lol;</x>'
    content = _rezipped(
        _xlsx([["member_id", "name"], ["W1", "Ada"]]), extra=[("customXml/item1.xml", doctype)]
    )
    error = _refused(_upload(operator, simple_workflow, content, "a.xlsx"), 400, "invalid_xlsx")
    assert error["message"] == files.XLSX_DOCTYPE.format(part="customXml/item1.xml")
    svg = b'<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd"><svg/>'
    picture = _rezipped(
        _xlsx([["member_id", "name"], ["W1", "Ada"]]), extra=[("xl/media/image1.svg", svg)]
    )
    assert _upload(operator, simple_workflow, picture, "a.xlsx").status_code == 201


def test_a_csv_of_blank_lines_is_413_once_past_the_row_limit(operator, org_a, simple_workflow):
    content = hostile_files.csv_blank_lines(size=1_000_000)
    error = _refused(_upload(operator, simple_workflow, content), 413, "too_many_rows")
    assert error["message"] == files.FILE_TOO_MANY_ROWS.format(limit=100_000)
    assert _nothing_written(org_a)


def test_blank_lines_of_a_csv_count_toward_the_row_limit(
    operator, org_a, simple_workflow, settings
):
    settings.BATCH_MAX_ROWS = 5
    over = b"\n\nmember_id,name\nW1,Ada\n\n\n\nW2,Bob\n"  # 2 blank lines, header, 6 rows
    _refused(_upload(operator, simple_workflow, over), 413, "too_many_rows")
    within = b"member_id,name\nW1,Ada\n\n\n\nW2,Bob\n"
    assert _upload(operator, simple_workflow, within).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_the_file_is_read_before_any_transaction_opens(org_a, simple_workflow):
    """Parse first, then write: while the upload is read, no transaction is open (one that
    had inserted the job would hold its locks for as long as the file takes to read)."""
    reads = []

    class Watched(io.BytesIO):
        def read(self, *args):
            reads.append(connection.in_atomic_block)
            return super().read(*args)

        read1 = read

    content = b"member_id,name\n" + b"W1,Ada\n" * 3_000
    upload = InMemoryUploadedFile(Watched(content), "file", "rows.csv", None, len(content), None)
    with org_context(org_a.id):
        job = batch_upload.batch_job_upload(workflow=simple_workflow, file=upload)
        assert job.total_rows == 3_000
    assert reads and not any(reads)
