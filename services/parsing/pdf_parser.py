"""PDF: text per page with pypdf, sections from the document outline (bookmarks).

pypdf (BSD) is pure Python, so a hostile file can make it slow or hungry but cannot
corrupt the process; the pool's time and memory limits contain the rest. Paragraphs are
split on blank lines, and long blocks at line ends after a sentence end.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from typing import Any

from pypdf import PdfReader
from pypdf.errors import PdfReadError, PyPdfError

from services.parsing.common import SegmentSink
from services.parsing.model import PDF, DocumentRejected, ParsedDocument, ParseLimits

_BLANK = re.compile(r"\n\s*\n")
_SENTENCE_LINE = re.compile(r"(?<=[.!?:])\n")
# pypdf reports damage through many exception types; all mean "not a readable PDF".
_DAMAGE = (
    PdfReadError, PyPdfError, KeyError, ValueError, TypeError, AttributeError, IndexError,
    ArithmeticError, NotImplementedError, AssertionError, struct.error, zlib.error,
)  # fmt: skip
_LONG_BLOCK = 1200  # characters; beyond this a block is split at sentence-ending lines


def parse_pdf(content: bytes, limits: ParseLimits) -> ParsedDocument:
    """Segments per page; DocumentRejected when encrypted, corrupt or above ``max_pages``."""
    try:
        reader = PdfReader(io.BytesIO(content), strict=False)
        if reader.is_encrypted:
            raise DocumentRejected("the PDF is encrypted (password-protected); it cannot be indexed")
        pages = len(reader.pages)
        if pages > limits.max_pages:
            raise DocumentRejected(f"the PDF has {pages} pages, more than the limit of {limits.max_pages} (max_pages)")
        if pages == 0:
            raise DocumentRejected("the PDF has no pages (corrupt or truncated)")
        starts = _outline_starts(reader)
        sink = SegmentSink(limits)
        section: tuple[str, ...] = ()
        for number, page in enumerate(reader.pages, start=1):
            section = starts.get(number, section)
            for block in _blocks(page.extract_text() or ""):
                sink.add(block, "text", section, page=number)
        return ParsedDocument(PDF, sink.segments, pages=pages, title=_title(reader))
    except _DAMAGE as error:
        raise DocumentRejected(f"the PDF is corrupt or truncated ({type(error).__name__}: {error})") from None


def _blocks(text: str) -> list[str]:
    """Paragraph-like blocks of one page's text."""
    blocks: list[str] = []
    for block in _BLANK.split(text):
        if len(block) <= _LONG_BLOCK:
            blocks.append(block)
        else:
            blocks.extend(_SENTENCE_LINE.split(block))
    return blocks


def _outline_starts(reader: PdfReader) -> dict[int, tuple[str, ...]]:
    """Page number -> heading path of the last outline entry starting on that page."""
    starts: dict[int, tuple[str, ...]] = {}
    try:
        outline = reader.outline
    except (PdfReadError, PyPdfError, KeyError, ValueError, TypeError):
        return starts  # a broken outline loses sections, not the text

    def walk(items: list[Any], path: tuple[str, ...]) -> None:
        current = path
        for item in items:
            if isinstance(item, list):
                walk(item, current)
                continue
            current = (*path, str(item.title).strip())
            page = reader.get_destination_page_number(item)
            if page is not None and page >= 0:
                starts[page + 1] = current

    walk(list(outline), ())
    return starts


def _title(reader: PdfReader) -> str | None:
    try:
        metadata = reader.metadata
    except (PdfReadError, PyPdfError, KeyError, ValueError, TypeError):
        return None
    title = metadata.title if metadata is not None else None
    return str(title).strip() or None if title else None
