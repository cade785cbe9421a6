"""Hostile upload files, built small in memory (never the inflated size on disk), for the
tests and for benchmarks/upload_limits.py."""

from __future__ import annotations

import io
import re
import zipfile

import openpyxl

SHEET = "xl/worksheets/sheet1.xml"


def _workbook(rows: list[list]) -> bytes:
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _rewritten(content: bytes, sheet: callable) -> bytes:
    """The workbook with its first sheet's XML passed through ``sheet`` (bytes -> chunks)."""
    source = zipfile.ZipFile(io.BytesIO(content))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            data = source.read(member.filename)
            if member.filename != SHEET:
                target.writestr(member, data)
                continue
            with target.open(SHEET, "w", force_zip64=True) as out:
                for chunk in sheet(data):
                    out.write(chunk)
    return buffer.getvalue()


def xlsx_row_gap(row_number: int = 100_000_000) -> bytes:
    """A header and one row numbered ``row_number``; the declared dimension says A1:B2, as a
    lying writer's would, so only the row's own number tells."""

    def sheet(xml: bytes):
        xml = xml.replace(b'<row r="2"', f'<row r="{row_number}"'.encode())
        xml = re.sub(
            rb'r="([A-Z]+)2"', lambda m: b'r="' + m.group(1) + str(row_number).encode() + b'"', xml
        )
        yield xml

    return _rewritten(_workbook([["member_id", "name"], ["W1", "Ada"]]), sheet)


def xlsx_bomb(inflated_bytes: int) -> bytes:
    """A valid workbook whose sheet XML is padded with ``inflated_bytes`` of white space
    inside <sheetData>: a few hundred kilobytes packed."""

    def sheet(xml: bytes):
        head, tail = xml.split(b"<sheetData>", 1)
        yield head + b"<sheetData>"
        chunk = b" " * (1024 * 1024)
        for _ in range(inflated_bytes // len(chunk)):
            yield chunk
        yield tail

    return _rewritten(_workbook([["member_id", "name"], ["W1", "Ada"]]), sheet)


def csv_blank_lines(size_bytes: int) -> bytes:
    """A header, one row, then blank lines up to ``size_bytes``."""
    head = b"member_id,name\nW1,Ada\n"
    return head + b"\n" * (size_bytes - len(head))
