"""Plain text (paragraphs by blank lines) and tables (CSV with the stdlib, XLSX with openpyxl).

Table rows are written ``cell | cell`` in blocks of a few rows, each block starting with
the header row, so a chunk of a large table still says what its columns are.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable

import openpyxl

from services.parsing.common import SegmentSink, decode_text
from services.parsing.model import CSV, PLAIN, XLSX, DocumentRejected, ParsedDocument, ParseLimits
from services.parsing.zipcheck import check_zip

_BLANK = re.compile(r"\n\s*\n")
ROWS_PER_SEGMENT = 10


def parse_text(content: bytes, limits: ParseLimits) -> ParsedDocument:
    """One paragraph segment per blank-line-separated block."""
    sink = SegmentSink(limits)
    for block in _BLANK.split(decode_text(content).replace("\r\n", "\n")):
        sink.add(block, "paragraph", ())
    return ParsedDocument(PLAIN, sink.segments, pages=None, title=None)


def parse_csv(content: bytes, limits: ParseLimits) -> ParsedDocument:
    """Rows of a CSV file (dialect sniffed: comma, semicolon, tab) in header-led blocks."""
    text = decode_text(content)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    sink = SegmentSink(limits)
    try:
        _table_blocks(sink, csv.reader(io.StringIO(text), dialect), ())
    except csv.Error as error:
        raise DocumentRejected(f"the CSV file is malformed ({error})") from None
    return ParsedDocument(CSV, sink.segments, pages=None, title=None)


def parse_xlsx(content: bytes, limits: ParseLimits) -> ParsedDocument:
    """Rows of every sheet; the sheet name is the section."""
    check_zip(content, limits, "XLSX")
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (KeyError, ValueError, OSError) as error:
        raise DocumentRejected(f"the XLSX file is not a valid workbook ({error})") from None
    sink = SegmentSink(limits)
    try:
        for sheet in workbook.worksheets:
            rows = (["" if value is None else str(value) for value in row] for row in sheet.iter_rows(values_only=True))
            _table_blocks(sink, rows, (sheet.title,))
    finally:
        workbook.close()
    return ParsedDocument(XLSX, sink.segments, pages=None, title=workbook.properties.title or None)


def _table_blocks(sink: SegmentSink, rows: Iterable[list[str]], section: tuple[str, ...]) -> None:
    """Add ``rows`` as table segments of ROWS_PER_SEGMENT rows, each led by the header."""
    lines = (" | ".join(cell.strip() for cell in row) for row in rows if any(cell.strip() for cell in row))
    header = next(lines, None)
    if header is None:
        return
    block: list[str] = []
    emitted = False
    for line in lines:
        block.append(line)
        if len(block) == ROWS_PER_SEGMENT:
            sink.add("\n".join([header, *block]), "table", section)
            block, emitted = [], True
    if block or not emitted:
        sink.add("\n".join([header, *block]), "table", section)
