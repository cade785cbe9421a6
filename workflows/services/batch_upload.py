"""Batch uploads: a CSV or Excel file, or JSON rows, read (``workflows.validation.files``),
checked (``workflows.selectors.batch_upload``) and turned into a batch job.

Rows flow one by one from the reader through the check into a spool, and from the spool into
``batch_job_create``, which inserts them in chunks.

What an upload means beyond reading it (docs/api.md repeats it for clients; encoding, row
numbers, cells, column_map and workbooks are ``workflows.validation.files``):

- **Columns.** The header is checked once: every field the workflow's ``required_data`` names
  and every unconditionally required field of its task's effective requirements must have a
  column (400 ``missing_columns`` naming them, not one error per row). Other columns are
  carried into the rows' input, as a run's input may carry fields of its own.
- **Invalid rows.** Each row is checked like a run's input (``run_input_problems``): required
  data present, then the effective requirements of (organization, endpoint, task type, today).
  ``reject`` refuses the upload (400 ``invalid_rows``, the first 100 errors listed, nothing
  written); ``skip`` makes them failed items carrying their errors while valid rows run.
- **Parse first, then write.** The whole file is read and every row checked before the job is
  inserted: checked rows wait in a spool (memory, then a temporary file), and the job and its
  items are written in one short transaction at the end. A slow or refused file therefore
  never holds a transaction that has written or locked a row (docs/batch-jobs.md#limits).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, cast

from django.core.files.uploadedfile import UploadedFile

from rcm.errors import ApplicationError
from workflows.engine.graph import Graph
from workflows.models import BatchJob, InvalidRowPolicy, Workflow
from workflows.selectors.batch_upload import RowChecker, RowFlow
from workflows.selectors.runs import runnable_revision
from workflows.services.batch import batch_job_create
from workflows.validation.files import (
    MAX_LISTED_ERRORS,
    NO_JSON_ROWS,
    NO_ROWS,
    ColumnMap,
    Row,
    rows_table_read,
    upload_limits,
    upload_size_check,
    upload_table_read,
)

# Checked rows are kept in memory up to this size before the spool moves to a temporary file
# (100,000 rows of an eligibility check are some 22 MB as JSON lines, computed).
SPOOL_MEMORY_BYTES = 4 * 1024 * 1024

INVALID_ROWS = (
    "{count} row(s) do not satisfy the workflow's requirements; nothing was created. Rows are "
    "numbered from 1, the first row under the header; up to {listed} errors are listed."
)


def batch_job_upload(
    *,
    workflow: Workflow,
    file: UploadedFile | None = None,
    rows: Iterable[Mapping] | None = None,
    column_map: ColumnMap | None = None,
    on_invalid: str = InvalidRowPolicy.REJECT,
    max_concurrency: int = 4,
    prompt: str = "",
    created_by=None,
) -> BatchJob:
    """A batch job of the workflow's latest revision from a file or from JSON rows.

    The upload is read and every row checked before anything is written; only then are the
    job and its items inserted, in one transaction (``batch_job_create``). The caller sees
    either the job with all its items, or an error and nothing written, and a file that takes
    long to read never holds a transaction that has written.
    """
    revision = runnable_revision(workflow=workflow)
    checker = RowChecker(graph=Graph.from_snapshot(revision.graph), org_id=workflow.org_id)
    if file is not None:
        upload_size_check(size=cast(int, file.size))  # an uploaded file's is always known
        table = upload_table_read(
            upload=file, column_map=column_map, date_formats=checker.date_formats
        )
        checker.columns_check(table.columns)
    else:
        table = rows_table_read(rows=rows or [], column_map=column_map)
    flow = RowFlow(checker=checker, on_invalid=on_invalid, max_rows=upload_limits()[1])
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as spool:
        empty_message = NO_JSON_ROWS if file is None else NO_ROWS
        _spool_write(spool, flow.rows(table.records, empty_message=empty_message))
        if flow.invalid_rows and on_invalid == InvalidRowPolicy.REJECT:
            message = INVALID_ROWS.format(count=flow.invalid_rows, listed=MAX_LISTED_ERRORS)
            details = {"invalid_row_count": flow.invalid_rows, "rows": flow.errors}
            raise ApplicationError("invalid_rows", message, details)
        return batch_job_create(
            workflow=workflow,
            revision=revision,
            rows=_spool_read(spool),
            created_by=created_by,
            prompt=prompt,
            file_name=(file.name or "")[:255] if file is not None else "",
            max_concurrency=max_concurrency,
            on_invalid=on_invalid,
        )


def _spool_write(spool: IO[bytes], rows: Iterable[Row]) -> None:
    """Checked rows as JSON lines, held between reading and writing. The spool stays in
    memory up to ``SPOOL_MEMORY_BYTES`` and then moves to a temporary file, so that holding a
    whole upload until it has been read costs no more memory than streaming it did."""
    for row in rows:
        line = json.dumps([row.row_number, row.input_data, row.error], separators=(",", ":"))
        spool.write(line.encode() + b"\n")


def _spool_read(spool: IO[bytes]) -> Iterator[Row]:
    spool.seek(0)
    for line in spool:
        row_number, input_data, error = json.loads(line)
        yield Row(row_number=row_number, input_data=input_data, error=error)
