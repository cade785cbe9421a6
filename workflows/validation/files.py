"""Reading an upload: a CSV or Excel file, or JSON rows, turned into rows of cells by field
name, and the limits an upload keeps. What the rows mean is checked above this, by
``workflows.selectors.batch_upload`` (``RowChecker``); here only what the file is and how it is
laid out.

Reading streams in constant memory: a CSV is read line by line through a text wrapper over the
uploaded file (Django keeps uploads larger than FILE_UPLOAD_MAX_MEMORY_SIZE in a temporary
file), an Excel workbook through openpyxl's read-only mode, and rows are yielded one by one as
they are consumed.

What reading an upload means (docs/api.md repeats it for clients):

- **Encoding.** A CSV is UTF-8 (with or without a byte-order mark) when every byte of it decodes
  as UTF-8, else Windows-1252 as a whole. The choice takes a pass over the file before any row
  is read: switching at the first bad byte would leave the rows already read in the wrong one.
  A byte that is neither (0x81, 0x8D, 0x8F, 0x90, 0x9D) or a NUL byte is a 400 naming its offset.
- **Rows** are numbered from 1, the first row under the header (spreadsheet row 2). Blank rows
  of a file are skipped but keep their number, so an item's ``row_number`` still points at its
  row in the file. They count toward the row limit all the same: a run of blank lines, or a
  sheet whose rows jump to row 100,000,000, costs what that many rows cost to read. JSON rows
  are numbered from 1 in list order and none is skipped.
- **Cells.** Text is stripped; an empty cell is an absent field (so optional fields validate).
  Excel dates become text in the field's date format (ISO otherwise).
- **Columns** are renamed by the optional ``column_map`` (file column -> field; None leaves
  the column out of the rows).
- **A workbook is checked as an archive before openpyxl opens it**: the size of its directory,
  and the compression method, inflated size and compression ratio of every part, read from the
  zip headers; then every part is streamed once through expat, which refuses a document type
  declaration (pictures aside), a stretch of more than ``MAX_XML_TOKEN_BYTES`` between two
  elements (one gigantic cell or attribute), and a sheet that declares or holds a row beyond
  the row limit.
  Headers that lie do not help: zipfile stops a part at the size its header declares (and then
  fails its CRC), so the declared sizes bound the bytes actually inflated.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, cast
from xml.etree.ElementTree import ParseError
from xml.parsers import expat

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from rcm.api.parsers import json_problem
from rcm.errors import ApplicationError
from workflows.validation.rows import DEFAULT_DATE_FORMAT

DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_ROWS = 100_000
# Excel's own limit for one cell: longer text is not spreadsheet data.
MAX_CELL_CHARS = 32_767
# No payer task has more than a few dozen fields; a wider header is the wrong file.
MAX_COLUMNS = 1_000
# One physical CSV line, so that a file without line breaks cannot fill the memory.
MAX_LINE_CHARS = 1024 * 1024
# Room for the form fields around the file in a multipart body (column_map, prompt, ...).
MULTIPART_SLACK_BYTES = 1024 * 1024
MAX_LISTED_ERRORS = 100
READ_CHUNK_BYTES = 64 * 1024

# A workbook's directory lists its parts at some 80 bytes each, and ZipFile holds a ~500-byte
# object for each entry: a 25 MB directory of empty entries took 1.9 s and 160 MB to open
# (measured) before a single part was read. 1 MiB is about 13,000 parts; a workbook has a
# dozen, a large one a few hundred.
MAX_XLSX_DIRECTORY_BYTES = 1024 * 1024
# Every part inflated, together. 100,000 rows of 7 columns are 36 MB of sheet XML as openpyxl
# writes them (measured), so this leaves room for some 50 columns; openpyxl reads about 4.4 MB
# of sheet XML a second, so it also bounds the time a workbook can take.
MAX_XLSX_INFLATED_BYTES = 256 * 1024 * 1024
# Inflated over compressed size of one part. Sheet XML deflates 9 times (varied rows) to 22
# times (every cell alike), measured; deflate cannot pass about 1,032 times, which a zip bomb
# approaches. Parts under the floor are exempt: a few KB may inflate from almost nothing.
MAX_XLSX_RATIO = 100
XLSX_RATIO_FLOOR_BYTES = 1024 * 1024
# The longest stretch of a part without an element starting: a cell holds at most 32,767
# characters, at most 10 bytes each written as character references (&#x10FFFF;). A longer
# stretch is one gigantic text, attribute or comment, which a parser would hold in memory.
MAX_XML_TOKEN_BYTES = 1024 * 1024

FILE_TOO_LARGE = "The upload is {size} bytes; at most {limit} bytes ({mb:g} MB) are accepted."
TOO_MANY_ROWS = "The upload has more than {limit} rows; split it into files of at most {limit}."
FILE_TOO_MANY_ROWS = (
    "The file has more than {limit} rows under its header, counting blank rows; delete the "
    "empty rows and split it into files of at most {limit} rows."
)
SHEET_ROWS_DECLARED = (
    "Sheet {part} declares rows up to {row} (dimension {ref}); a sheet may reach row {last} at "
    "most (the header and {limit} rows, blank rows included). Delete the empty rows below the "
    "data, or split the file."
)
SHEET_ROW_BEYOND = (
    "Sheet {part} has a row numbered {row}; a sheet may reach row {last} at most (the header "
    "and {limit} rows, blank rows included). Delete the empty rows below the data, or split the "
    "file."
)
EMPTY_FILE = "The file is empty: it has no header row."
NO_ROWS = "The upload has no rows under its header."
NO_JSON_ROWS = "rows is empty: send at least one row."
BINARY_FILE = (
    "The file has a NUL byte at offset {offset} (line {line}): it is not plain text (UTF-16 "
    "'Unicode text', or not a CSV at all). Save it as CSV UTF-8."
)
UNDECODABLE = (
    "Byte 0x{byte:02X} at offset {offset} (line {line}) is neither UTF-8 nor Windows-1252. "
    "Save the file as CSV UTF-8."
)
UNSUPPORTED_FILE = "Only CSV (.csv) and Excel (.xlsx) files are accepted; save the file as one."
INVALID_XLSX = "The file is not a readable Excel (.xlsx) workbook."
XLSX_DIRECTORY_TOO_LARGE = (
    "The workbook's directory is {size} bytes; at most {limit} bytes (some 13,000 parts) are "
    "accepted."
)
XLSX_COMPRESSION_METHOD = (
    "Part {part} of the workbook is compressed with method {method}; a workbook's parts are "
    "stored or deflated, without encryption."
)
XLSX_COMPRESSION_RATIO = (
    "Part {part} of the workbook inflates {ratio:,.0f} times ({size} bytes from {compressed}); "
    "at most {limit} times is accepted. The file is a zip bomb, not a spreadsheet."
)
XLSX_TOO_LARGE = (
    "The workbook inflates to more than {limit} bytes ({mb:g} MB; reached at part {part}); "
    "split it into smaller files or save it as CSV."
)
XLSX_OVERSIZED_XML = (
    "Part {part} of the workbook has more than {limit} bytes without an element (from byte "
    "{offset}): no cell holds that much. The file is not a spreadsheet."
)
XLSX_DOCTYPE = "Part {part} of the workbook declares a document type, which a workbook never does."
MALFORMED_CSV = "Line {line} is not valid CSV: {reason}."
LINE_TOO_LONG = "Line {line} is longer than {limit} characters."
CELL_TOO_LARGE = "Row {row}, column {column}: the cell is longer than {limit} characters."
CELL_TOO_LARGE_AT_LINE = "Line {line}: a cell is longer than {limit} characters."
TOO_MANY_COLUMNS = "The header has more than {limit} columns."
BLANK_HEADER = "The header leaves column(s) {positions} without a name; name every column."
DUPLICATE_HEADER = "These columns appear more than once (after column_map): {names}."
RAGGED_ROW = "Row {row} (line {line}) has {found} cells; the header has {expected}."
UNKNOWN_MAPPED = "column_map names columns the file does not have: {names}."
UNSTORABLE_ROW = "Row {row}: {problem}"

XLSX_MAGIC = b"PK\x03\x04"
LEGACY_XLS_MAGIC = b"\xd0\xcf\x11\xe0"
_XLSX_ERRORS = (
    zipfile.BadZipFile,
    KeyError,
    ValueError,
    TypeError,
    OSError,
    EOFError,
    ParseError,
    zlib.error,
    NotImplementedError,  # zipfile: a compression method it does not support
)


# file column -> field name, or None to leave the column out of the rows
ColumnMap = Mapping[str, str | None]


def upload_limits() -> tuple[int, int]:
    """(bytes, rows) an upload may have (settings BATCH_MAX_UPLOAD_BYTES, BATCH_MAX_ROWS)."""
    return (
        getattr(settings, "BATCH_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
        getattr(settings, "BATCH_MAX_ROWS", DEFAULT_MAX_ROWS),
    )


def upload_size_check(*, size: int, slack: int = 0) -> None:
    """413 when an upload (or the request carrying it, with ``slack`` for its form fields) is
    larger than allowed. The view calls it on Content-Length before the body is parsed, so that
    an oversized file is refused before it is spooled to disk."""
    limit = upload_limits()[0]
    if size > limit + slack:
        message = FILE_TOO_LARGE.format(size=size, limit=limit, mb=limit / (1024 * 1024))
        raise ApplicationError("file_too_large", message, {"limit_bytes": limit}, status=413)


# -- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """A row as uploaded: its number (1 = first data row), its input, and its problems."""

    row_number: int
    input_data: dict
    error: str = ""


@dataclass
class UploadTable:
    """An upload's columns (after column_map; none for JSON rows) and its rows, read lazily as
    (row number, the row's non-blank cells by field name)."""

    columns: list[str]
    records: Iterator[tuple[int, dict]]


def upload_table_read(
    *,
    upload: UploadedFile,
    column_map: ColumnMap | None = None,
    date_formats: Mapping[str, str] | None = None,
) -> UploadTable:
    """The header, read and checked now; the rows, read as they are consumed."""
    head = _head(upload)
    max_rows = upload_limits()[1]
    if head.startswith(XLSX_MAGIC):
        raw, is_xlsx = _xlsx_records(upload, max_rows=max_rows), True
    elif head.startswith(LEGACY_XLS_MAGIC) or (upload.name or "").lower().endswith(".xls"):
        raise ApplicationError("unsupported_file_type", UNSUPPORTED_FILE)
    else:
        raw, is_xlsx = _csv_records(upload, _encoding_of(upload)), False
    raw = _records_bounded(raw, max_rows=max_rows)
    for _line, cells in raw:  # the header: the first row that is not blank
        if not _is_blank_row(cells):
            break
    else:
        raise ApplicationError("empty_file", EMPTY_FILE)
    names = ["" if cell is None else str(cell).strip() for cell in cells]
    if is_xlsx:  # Excel reports formatted but empty cells; only named columns count
        while names and not names[-1]:
            names.pop()
    columns = _columns_mapped(names, column_map or {})
    records = _file_records(raw, columns, exact_width=not is_xlsx, date_formats=date_formats or {})
    return UploadTable(columns=[name for name in columns if name is not None], records=records)


def _records_bounded(
    raw: Iterator[tuple[int, list]], *, max_rows: int
) -> Iterator[tuple[int, list]]:
    """The file's records, blank ones included, up to the header and ``max_rows`` more: a run
    of blank lines, or the blank rows openpyxl makes up for a gap in a sheet's row numbers,
    costs what as many rows would, so it counts as many (413 past the limit)."""
    for number, record in enumerate(raw, start=1):
        if number > max_rows + 1:
            message = FILE_TOO_MANY_ROWS.format(limit=max_rows)
            raise ApplicationError("too_many_rows", message, {"limit_rows": max_rows}, status=413)
        yield record


def _head(upload: UploadedFile) -> bytes:
    upload.seek(0)
    head = upload.read(4)
    upload.seek(0)
    return head


def _columns_mapped(names: list[str], column_map: ColumnMap) -> list[str | None]:
    """The field each column of the file fills, in file order; None for a column left out."""
    if len(names) > MAX_COLUMNS:
        message = TOO_MANY_COLUMNS.format(limit=MAX_COLUMNS)
        raise ApplicationError("too_many_columns", message, {"limit_columns": MAX_COLUMNS})
    blank = [position for position, name in enumerate(names, start=1) if not name]
    if blank:
        positions = ", ".join(str(position) for position in blank[:MAX_LISTED_ERRORS])
        raise ApplicationError(
            "blank_header", BLANK_HEADER.format(positions=positions), {"columns": blank}
        )
    unknown = [name for name in column_map if name not in names]
    if unknown:
        message = UNKNOWN_MAPPED.format(names=", ".join(unknown))
        raise ApplicationError("invalid_column_map", message, {"column_map": [message]})
    columns = [column_map.get(name, name) for name in names]
    _duplicates_refuse(name for name in columns if name is not None)
    return columns


def _duplicates_refuse(columns: Iterable[str]) -> None:
    seen: set[str] = set()
    repeated: dict[str, None] = {}
    for name in columns:
        if name in seen:
            repeated[name] = None
        seen.add(name)
    if repeated:
        names = list(repeated)
        raise ApplicationError(
            "duplicate_header", DUPLICATE_HEADER.format(names=", ".join(names)), {"columns": names}
        )


def _is_blank_row(cells: list) -> bool:
    return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells)


def _file_records(
    raw: Iterator[tuple[int, list]],
    columns: list[str | None],
    *,
    exact_width: bool,
    date_formats: Mapping[str, str],
) -> Iterator[tuple[int, dict]]:
    width = len(columns)
    for row_number, (line, cells) in enumerate(raw, start=1):
        if _is_blank_row(cells):
            continue
        # A CSV row has the header's width. Excel pads rows to the sheet's widest one: there
        # only a value beyond the header's last column makes a row ragged.
        found = len(cells) if exact_width else _last_filled(cells)
        if (found != width) if exact_width else (found > width):
            message = RAGGED_ROW.format(row=row_number, line=line, found=found, expected=width)
            raise ApplicationError(
                "ragged_row", message, {"row": row_number, "line": line, "expected": width}
            )
        row = {}
        for column, value in zip(columns, cells, strict=False):
            if column is None:
                continue
            value = _cell_value(value, date_format=date_formats.get(column))
            if value is None:
                continue
            if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
                _cell_too_large(row_number, column)
            row[column] = value
        yield row_number, row


def _last_filled(cells: list) -> int:
    """The position (from 1) of the row's last non-empty cell; 0 for none."""
    for position in range(len(cells), 0, -1):
        if not _is_blank_row(cells[position - 1 : position]):
            return position
    return 0


def _cell_value(value: Any, *, date_format: str | None = None) -> Any:
    """A cell as it goes into the row's input (JSON): stripped text, numbers, booleans, and
    Excel dates as text; None for an empty cell."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, dt.datetime):
        if date_format:
            return value.strftime(date_format)
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.strftime(date_format or DEFAULT_DATE_FORMAT)
    if isinstance(value, dt.time | dt.timedelta):
        return str(value)
    return value


def _cell_too_large(row_number: int, column: str):
    message = CELL_TOO_LARGE.format(row=row_number, column=column, limit=MAX_CELL_CHARS)
    raise ApplicationError(
        "cell_too_large", message, {"row": row_number, "column": column, "limit": MAX_CELL_CHARS}
    )


# CSV


def _encoding_of(upload: UploadedFile) -> str:
    """utf-8-sig (which also reads UTF-8 without a BOM) if the whole file decodes as UTF-8,
    else cp1252, whose five undefined bytes are a 400 naming where they are."""
    if _undecodable(upload, "utf-8") is None:
        return "utf-8-sig"
    failure = _undecodable(upload, "cp1252")
    if failure is not None:
        offset, line, byte = failure
        message = UNDECODABLE.format(byte=byte, offset=offset, line=line)
        raise ApplicationError(
            "undecodable", message, {"offset": offset, "line": line, "byte": f"0x{byte:02X}"}
        )
    return "cp1252"


def _undecodable(upload: UploadedFile, encoding: str) -> tuple[int, int, int] | None:
    """Where the file stops decoding as ``encoding`` (offset, line, byte), or None.

    The offset is exact for cp1252 (one byte a character); for UTF-8 only the verdict is used.
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = newlines = 0
    for chunk in upload.chunks(READ_CHUNK_BYTES):
        nul = chunk.find(b"\x00")
        if nul >= 0:
            line = newlines + chunk.count(b"\n", 0, nul) + 1
            raise ApplicationError(
                "binary_file",
                BINARY_FILE.format(offset=offset + nul, line=line),
                {"offset": offset + nul, "line": line},
            )
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            start = max(exc.start, 0)
            line = newlines + chunk.count(b"\n", 0, start) + 1
            return offset + start, line, chunk[start] if start < len(chunk) else 0
        offset += len(chunk)
        newlines += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return offset, newlines + 1, 0  # a sequence cut off by the end of the file
    return None


def _csv_records(upload: UploadedFile, encoding: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each CSV record, read line by line."""
    upload.seek(0)
    # An uploaded file's own: never None (File's type allows it for a closed one).
    text = io.TextIOWrapper(cast(IO[bytes], upload.file), encoding=encoding, newline="")
    reader = csv.reader(_lines(text))
    try:
        for cells in reader:
            yield reader.line_num, cells
    except csv.Error as exc:
        # The csv module's own cap (131,072 characters a field) is above MAX_CELL_CHARS.
        if "field larger than field limit" in str(exc):
            raise ApplicationError(
                "cell_too_large",
                CELL_TOO_LARGE_AT_LINE.format(line=reader.line_num, limit=MAX_CELL_CHARS),
                {"line": reader.line_num, "limit": MAX_CELL_CHARS},
            ) from exc
        message = MALFORMED_CSV.format(line=reader.line_num, reason=exc)
        raise ApplicationError("malformed_csv", message, {"line": reader.line_num}) from exc
    finally:
        text.detach()  # closing the wrapper would close the upload under Django's feet


def _lines(text: io.TextIOWrapper) -> Iterator[str]:
    number = 0
    while line := text.readline(MAX_LINE_CHARS + 1):
        number += 1
        if len(line) > MAX_LINE_CHARS:
            message = LINE_TOO_LONG.format(line=number, limit=MAX_LINE_CHARS)
            raise ApplicationError("line_too_long", message, {"line": number})
        yield line


# Excel


def _xlsx_records(upload: UploadedFile, *, max_rows: int) -> Iterator[tuple[int, list]]:
    """(sheet row, values) of the first worksheet, streamed (openpyxl's read-only mode), once
    the archive has passed ``_xlsx_archive_check``.

    The sheet's declared dimension is ignored when reading: some writers declare a wrong one,
    which would cut rows off, and a sheet formatted out to column XFD would pad every row to
    16,384 cells. Each row ends at its last cell instead; one column past MAX_COLUMNS is kept,
    so that a wider header is still seen. openpyxl holds the shared-strings table (every
    distinct text once) in memory; the archive check bounds it."""
    # Imported here: openpyxl takes some 180 ms to import, and only a process that reads a
    # workbook should pay it (the engine's workers never do).
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    xlsx_errors = (*_XLSX_ERRORS, InvalidFileException)
    upload.seek(0)
    try:
        _xlsx_archive_check(upload.file, max_rows=max_rows)
        upload.seek(0)
        workbook = openpyxl.load_workbook(
            cast(IO[bytes], upload.file), read_only=True, data_only=True
        )
    except xlsx_errors as exc:
        raise ApplicationError("invalid_xlsx", INVALID_XLSX) from exc
    try:
        if not workbook.worksheets:
            raise ApplicationError("empty_file", EMPTY_FILE)
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()
        rows = sheet.iter_rows(values_only=True)
        yield from enumerate((list(values[: MAX_COLUMNS + 1]) for values in rows), start=1)
    except xlsx_errors as exc:
        raise ApplicationError("invalid_xlsx", INVALID_XLSX) from exc
    finally:
        workbook.close()


def _xlsx_archive_check(file, *, max_rows: int) -> None:
    """Refuse a workbook whose reading would cost more than its size promises, before openpyxl
    opens it: first from the zip's own headers, then by streaming every part through expat
    (``_PartScan``) with the bytes it inflates bounded by those headers."""
    # ZipFile reads the whole directory into memory as it opens; its size is in the end
    # record, which this private reader is the one ZipFile itself uses to find.
    # (typeshed leaves zipfile's private names out, hence the ignores.)
    end = zipfile._EndRecData(file)  # type: ignore[attr-defined]
    if end is None:
        raise zipfile.BadZipFile("no end of central directory")
    directory = end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
    if directory > MAX_XLSX_DIRECTORY_BYTES:
        message = XLSX_DIRECTORY_TOO_LARGE.format(size=directory, limit=MAX_XLSX_DIRECTORY_BYTES)
        raise ApplicationError("xlsx_directory_too_large", message)
    file.seek(0)
    with zipfile.ZipFile(file) as archive:
        inflated = 0
        for info in archive.infolist():
            _xlsx_part_check(info)
            inflated += info.file_size
            if inflated > MAX_XLSX_INFLATED_BYTES:
                limit = MAX_XLSX_INFLATED_BYTES
                message = XLSX_TOO_LARGE.format(
                    limit=limit, mb=limit / (1024 * 1024), part=info.filename
                )
                raise ApplicationError(
                    "xlsx_too_large", message, {"limit_bytes": limit}, status=413
                )
        for info in archive.infolist():
            with archive.open(info) as stream:
                _PartScan(part=info.filename, max_rows=max_rows).read(stream)


def _xlsx_part_check(info: zipfile.ZipInfo) -> None:
    """What a part's header says: how it is compressed and how far it inflates. Only stored
    and deflated parts, because zipfile inflates those in bounded steps; bzip2 and lzma
    decompress a whole chunk at once, and one chunk can inflate to gigabytes."""
    part = info.filename
    encrypted = info.flag_bits & 0x1
    if encrypted or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        method = f"{info.compress_type} (encrypted)" if encrypted else info.compress_type
        message = XLSX_COMPRESSION_METHOD.format(part=part, method=method)
        raise ApplicationError("xlsx_compression_method", message, {"part": part})
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > XLSX_RATIO_FLOOR_BYTES and ratio > MAX_XLSX_RATIO:
        message = XLSX_COMPRESSION_RATIO.format(
            part=part,
            ratio=ratio,
            size=info.file_size,
            compressed=info.compress_size,
            limit=MAX_XLSX_RATIO,
        )
        raise ApplicationError("xlsx_compression_ratio", message, {"part": part})


XLSX_MEDIA_FOLDER = "xl/media/"
# A row number longer than this is beyond any limit (and int() refuses 4,301 digits).
MAX_ROW_DIGITS = 18
# The last row of a dimension (A1:G120 -> 120). Longer numbers are left to openpyxl, which
# refuses them as it reads the dimension.
_DIMENSION_LAST_ROW = re.compile(rf"(?<![0-9])([0-9]{{1,{MAX_ROW_DIGITS}}})$")


class _PartScan:
    """One pass of expat over a part of a workbook, holding nothing but counters.

    It refuses what would cost openpyxl's parser more than the file's size promises: a
    document type (entity expansion), a stretch of more than ``MAX_XML_TOKEN_BYTES`` without
    an element starting (one text, attribute or comment that big is held whole), and in a
    worksheet a declared dimension or a row number beyond the header and ``max_rows`` rows,
    before openpyxl would make up every blank row up to it. A part that is not XML (a
    picture) or breaks off is left alone: openpyxl refuses a broken part it needs, at the same
    byte.
    """

    def __init__(self, *, part: str, max_rows: int):
        self.part = part
        self.max_rows = max_rows
        self.last_row = max_rows + 1  # the header's row, if it is the sheet's first
        self.parser = expat.ParserCreate()
        self.parser.StartElementHandler = self._element
        # A picture (an SVG) may declare a document type; openpyxl never parses pictures, and
        # expat bounds entity expansion itself. Any other part that declares one is crafted.
        if not part.startswith(XLSX_MEDIA_FOLDER):
            self.parser.StartDoctypeDeclHandler = self._doctype
        self.root: str | None = None
        self.row = 0
        self.mark = 0  # where the last element started

    def read(self, stream) -> None:
        fed = 0
        try:
            while chunk := stream.read(READ_CHUNK_BYTES):
                self.parser.Parse(chunk, False)
                fed += len(chunk)
                self._stretch_check(fed)
            self.parser.Parse(b"", True)
        except expat.ExpatError:
            return

    def _stretch_check(self, position: int) -> None:
        if position - self.mark > MAX_XML_TOKEN_BYTES:
            message = XLSX_OVERSIZED_XML.format(
                part=self.part, limit=MAX_XML_TOKEN_BYTES, offset=self.mark
            )
            raise ApplicationError("xlsx_oversized_xml", message, {"part": self.part})

    def _doctype(self, *args) -> None:
        raise ApplicationError(
            "invalid_xlsx", XLSX_DOCTYPE.format(part=self.part), {"part": self.part}
        )

    def _element(self, name: str, attributes: dict) -> None:
        position = self.parser.CurrentByteIndex
        self._stretch_check(position)
        self.mark = position
        local = name.rpartition(":")[2]  # a writer may prefix the main namespace (x:row)
        if self.root is None:
            self.root = local
        elif self.root != "worksheet":
            return
        elif local == "row":
            # A row without a number follows the one before, as openpyxl reads it.
            number = attributes.get("r", "")
            if not number:
                self.row += 1
            elif number.isascii() and number.isdigit():
                self.row = int(number) if len(number) <= MAX_ROW_DIGITS else 10**MAX_ROW_DIGITS
            if self.row > self.last_row:
                self._refuse(SHEET_ROW_BEYOND.format(**self._where(self.row)), self.row)
        elif local == "dimension":
            ref = attributes.get("ref", "")
            declared = _DIMENSION_LAST_ROW.search(ref)
            if declared and int(declared.group(1)) > self.last_row:
                row = int(declared.group(1))
                self._refuse(SHEET_ROWS_DECLARED.format(ref=ref, **self._where(row)), row)

    def _where(self, row: int) -> dict:
        return {"part": self.part, "row": row, "last": self.last_row, "limit": self.max_rows}

    def _refuse(self, message: str, row: int) -> None:
        details = {"limit_rows": self.max_rows, "part": self.part, "row": row}
        raise ApplicationError("too_many_rows", message, details, status=413)


# JSON rows


def rows_table_read(*, rows: Iterable[Mapping], column_map: ColumnMap | None = None) -> UploadTable:
    """JSON rows as a table: no header (so no columns), the rows read as they are consumed."""
    return UploadTable(columns=[], records=_json_records(rows, column_map or {}))


def _json_records(rows: Iterable[Mapping], column_map: ColumnMap) -> Iterator[tuple[int, dict]]:
    for row_number, row in enumerate(rows, start=1):
        if len(row) > MAX_COLUMNS:
            message = TOO_MANY_COLUMNS.format(limit=MAX_COLUMNS)
            raise ApplicationError("too_many_columns", message, {"row": row_number})
        # The API's parser refuses this in any body already; the reader answers the same to
        # any other caller, naming the row, rather than failing at the INSERT.
        problem = json_problem(row)
        if problem is not None:
            raise ApplicationError(
                "invalid_text", UNSTORABLE_ROW.format(row=row_number, problem=problem)
            )
        names = [column_map.get(name, name) for name in row]
        _duplicates_refuse(name for name in names if name is not None)
        cells = {}
        for name, value in zip(names, row.values(), strict=True):
            if name is None:
                continue
            value = _json_value(value)
            if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
                _cell_too_large(row_number, name)
            if value is not None:
                cells[name] = value
        yield row_number, cells


def _json_value(value: Any) -> Any:
    """Blank (None, whitespace, a list of blanks) is absent, like an empty cell."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list) and all(_json_value(item) is None for item in value):
        return None
    return value
