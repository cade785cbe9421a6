"""Hostile uploads, built small: the files the bounded-input issue names, for the tests and
for ``benchmarks/upload_limits.py``.

    xlsx_row_gap(row=100_000_000)             # 4.7 KB; its second row is numbered 100,000,000
    xlsx_inflating(inflated_bytes=1 << 30)    # about 1 MB; its sheet inflates to 1 GiB
    csv_blank_lines(size=49 * 1024 * 1024)    # a header, then nothing but line breaks

A zip bomb is never inflated to build it: its sheet is a deflate stream whose middle is one
compressed block of spaces repeated (each block starts afresh after a full flush, so copies
of it can follow each other), written into the archive as is, with the CRC computed over the
spaces block by block.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import openpyxl

SHEET_PATH = "xl/worksheets/sheet1.xml"
SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
)
HEADER_ROW = (
    b'<row r="1"><c r="A1" t="inlineStr"><is><t>member_id</t></is></c>'
    b'<c r="B1" t="inlineStr"><is><t>name</t></is></c></row>'
)
SPACES = b" " * (1024 * 1024)


def xlsx_row_gap(*, row: int, dimension: bool = True) -> bytes:
    """A workbook with the header, one row, and a second row numbered ``row``: every row in
    between is blank (absent from the file). ``dimension`` declares the sheet's true extent."""
    declared = f'<dimension ref="A1:B{row}"/>'.encode() if dimension else b""
    sheet = (
        SHEET_HEAD
        + declared
        + b"<sheetData>"
        + HEADER_ROW
        + _data_row(2, b"W1", b"Ada")
        + _data_row(row, b"W2", b"Bob")
        + b"</sheetData></worksheet>"
    )
    members = _workbook_members()
    members[SHEET_PATH] = _deflated(sheet)
    return _archive(members)


def xlsx_inflating(*, inflated_bytes: int, declared_bytes: int | None = None) -> bytes:
    """A workbook whose one data row's name is "Ada" followed by ``inflated_bytes`` of spaces
    (stripped, it is a valid row). ``declared_bytes`` makes the archive's headers lie about
    the sheet's inflated size."""
    head = SHEET_HEAD + b"<sheetData>" + HEADER_ROW
    head += b'<row r="2"><c r="A2" t="inlineStr"><is><t>W1</t></is></c>'
    head += b'<c r="B2" t="inlineStr"><is><t>Ada'
    tail = b"</t></is></c></row></sheetData></worksheet>"
    blocks, rest = divmod(inflated_bytes, len(SPACES))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = compressor.compress(head + SPACES[:rest]) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(SPACES) + compressor.flush(zlib.Z_FULL_FLUSH)
    last = compressor.compress(tail) + compressor.flush()
    crc = zlib.crc32(head + SPACES[:rest])
    for _ in range(blocks):
        crc = zlib.crc32(SPACES, crc)
    crc = zlib.crc32(tail, crc)
    size = len(head) + inflated_bytes + len(tail)
    members = _workbook_members()
    members[SHEET_PATH] = (first + block * blocks + last, crc, declared_bytes or size)
    return _archive(members)


def csv_blank_lines(*, size: int) -> bytes:
    """A CSV header, then line breaks up to ``size`` bytes: rows that are all blank."""
    header = b"member_id,name\n"
    return header + b"\n" * (size - len(header))


def _data_row(number: int, member_id: bytes, name: bytes) -> bytes:
    row = str(number).encode()
    return (
        b'<row r="'
        + row
        + b'"><c r="A'
        + row
        + b'" t="inlineStr"><is><t>'
        + member_id
        + b'</t></is></c><c r="B'
        + row
        + b'" t="inlineStr"><is><t>'
        + name
        + b"</t></is></c></row>"
    )


def _workbook_members() -> dict[str, tuple[bytes, int, int]]:
    """Every part of an empty openpyxl workbook (styles, theme, ...), deflated: the sheet is
    then replaced, so that the file looks like what a spreadsheet program writes."""
    buffer = io.BytesIO()
    openpyxl.Workbook().save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        return {name: _deflated(archive.read(name)) for name in archive.namelist()}


def _deflated(data: bytes) -> tuple[bytes, int, int]:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(), zlib.crc32(data), len(data)


def _archive(members: dict[str, tuple[bytes, int, int]]) -> bytes:
    """A zip archive of already deflated members (data, CRC, inflated size as declared)."""
    out = io.BytesIO()
    directory = []
    for name, (data, crc, size) in members.items():
        offset, encoded = out.tell(), name.encode()
        # Deflate (8), dated 1980-01-01 (0x21), no flags, no extra fields.
        out.write(
            struct.pack(
                "<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(data), size, len(encoded), 0
            )
        )
        out.write(encoded + data)
        directory.append(
            struct.pack(
                "<4s6H3L5H2L",
                b"PK\x01\x02",
                20,
                20,
                0,
                8,
                0,
                0x21,
                crc,
                len(data),
                size,
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + encoded
        )
    start, central = out.tell(), b"".join(directory)
    out.write(central)
    out.write(
        struct.pack(
            "<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), start, 0
        )
    )
    return out.getvalue()
