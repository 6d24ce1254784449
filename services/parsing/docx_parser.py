"""DOCX with python-docx: heading styles build the section path; paragraphs, list items, tables.

python-docx (MIT) reads the document body in order. Heading levels come from the
built-in "Heading N" / "Title" styles (and the outline level a custom style declares);
list items are paragraphs in a "List ..." style or with numbering; a table becomes one
segment of rows written ``cell | cell``.
"""

from __future__ import annotations

import io
import re
import zipfile

import docx
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from docx.text.paragraph import Paragraph

from services.parsing.common import HeadingPath, SegmentSink
from services.parsing.model import DOCX, DocumentRejected, ParsedDocument, ParseLimits
from services.parsing.zipcheck import check_zip

_HEADING_STYLE = re.compile(r"^heading\s+(\d)$", re.IGNORECASE)


def parse_docx(content: bytes, limits: ParseLimits) -> ParsedDocument:
    """Segments in body order; DocumentRejected for a bomb or a broken package."""
    check_zip(content, limits, "DOCX")
    try:
        document = docx.Document(io.BytesIO(content))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as error:
        raise DocumentRejected(f"the DOCX file is not a valid Word document ({error})") from None
    headings = HeadingPath()
    sink = SegmentSink(limits)
    title: str | None = document.core_properties.title or None
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            sink.add("\n".join(_rows(block)), "table", headings.path)
            continue
        level = _heading_level(block)
        text = block.text
        if level is not None and text.strip():
            if level == 0:
                title = title or text.strip()
                level = 1
            sink.add(text, "heading", headings.enter(level, text.strip()))
        else:
            sink.add(text, "list_item" if _is_list_item(block) else "paragraph", headings.path)
    return ParsedDocument(DOCX, sink.segments, pages=None, title=title)


def _heading_level(paragraph: Paragraph) -> int | None:
    """0 for Title, 1-9 for Heading N, None for body text."""
    style = paragraph.style
    name = (style.name or "") if style is not None else ""
    if name.lower() == "title":
        return 0
    match = _HEADING_STYLE.match(name)
    return int(match.group(1)) if match else None


def _is_list_item(paragraph: Paragraph) -> bool:
    style = paragraph.style
    if style is not None and (style.name or "").lower().startswith("list"):
        return True
    properties = paragraph._p.pPr
    return properties is not None and properties.numPr is not None


def _rows(table: Table) -> list[str]:
    """Each row as ``cell | cell``; a merged cell (the same cell repeated) is written once."""
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:
                continue
            previous = cell._tc
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            rows.append(" | ".join(cells))
    return rows
