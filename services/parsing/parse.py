"""In-process parsing: size check, type detection, then the format's parser.

Call this directly only for trusted input or inside a worker process; the orchestrator
uses :class:`services.parsing.pool.ParserPool`, which runs it in worker processes with a
time and a memory limit.
"""

from __future__ import annotations

from collections.abc import Callable

from services.parsing.detect import detect
from services.parsing.docx_parser import parse_docx
from services.parsing.html_parser import parse_html
from services.parsing.markdown_parser import parse_markdown
from services.parsing.model import (
    CSV,
    DOCX,
    HTML,
    MARKDOWN,
    PDF,
    PLAIN,
    XLSX,
    DocumentRejected,
    ParsedDocument,
    ParseLimits,
)
from services.parsing.pdf_parser import parse_pdf
from services.parsing.text_parser import parse_csv, parse_text, parse_xlsx

Parser = Callable[[bytes, ParseLimits], ParsedDocument]

PARSERS: dict[str, Parser] = {
    PDF: parse_pdf,
    DOCX: parse_docx,
    XLSX: parse_xlsx,
    HTML: parse_html,
    MARKDOWN: parse_markdown,
    PLAIN: parse_text,
    CSV: parse_csv,
}


def parse(content: bytes, media_type: str | None, file_name: str | None, limits: ParseLimits) -> ParsedDocument:
    """The document's segments; DocumentRejected naming the problem or the limit breached."""
    if len(content) > limits.max_bytes:
        raise DocumentRejected(
            f"the file has {len(content)} bytes, more than the limit of {limits.max_bytes} (max_bytes)"
        )
    if not content:
        raise DocumentRejected("the file is empty")
    content_type = detect(content, media_type, file_name)
    try:
        document = PARSERS[content_type](content, limits)
    except RecursionError:
        # Deeply nested markup (HTML, PDF object trees) exhausts the parsers' recursion.
        raise DocumentRejected("the document is nested too deeply to parse") from None
    if not document.segments:
        hint = " (a scanned PDF needs OCR, which is not supported)" if content_type == PDF else ""
        raise DocumentRejected(f"no text could be extracted from the document{hint}")
    return document
