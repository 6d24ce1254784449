"""Markdown with markdown-it-py: headings build the section path; lists, tables and code kept.

markdown-it-py (MIT) is a CommonMark parser with GFM tables; its token stream is walked
directly, so inline markup (``**bold**``, links) is reduced to its text and fenced code
keeps its layout.
"""

from __future__ import annotations

from bs4 import BeautifulSoup
from markdown_it import MarkdownIt
from markdown_it.token import Token

from services.parsing.common import HeadingPath, SegmentSink, decode_text
from services.parsing.model import MARKDOWN, ParsedDocument, ParseLimits


def parse_markdown(content: bytes, limits: ParseLimits) -> ParsedDocument:
    """Segments of a Markdown document."""
    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(decode_text(content))
    sink = SegmentSink(limits)
    headings = HeadingPath()
    list_depth = 0
    heading_level: int | None = None
    table: list[str] | None = None
    row: list[str] = []
    for token in tokens:
        kind = token.type
        if kind == "heading_open":
            heading_level = int(token.tag[1])
        elif kind == "heading_close":
            heading_level = None
        elif kind == "list_item_open":
            list_depth += 1
        elif kind == "list_item_close":
            list_depth -= 1
        elif kind == "table_open":
            table = []
        elif kind == "table_close" and table is not None:
            sink.add("\n".join(table), "table", headings.path)
            table = None
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close" and table is not None:
            if any(row):
                table.append(" | ".join(row))
        elif kind in ("fence", "code_block"):
            sink.add(token.content, "code", headings.path)
        elif kind == "html_block":
            sink.add(BeautifulSoup(token.content, "lxml").get_text(" ", strip=True), "paragraph", headings.path)
        elif kind == "inline":
            text = _inline_text(token)
            if table is not None:
                row.append(" ".join(text.split()))
            elif heading_level is not None:
                if text.strip():
                    sink.add(text, "heading", headings.enter(heading_level, " ".join(text.split())))
            else:
                sink.add(text, "list_item" if list_depth else "paragraph", headings.path)
    title = next((s.text for s in sink.segments if s.kind == "heading"), None)
    return ParsedDocument(MARKDOWN, sink.segments, pages=None, title=title)


def _inline_text(token: Token) -> str:
    """The visible text of an inline token: markup dropped, image alt text kept."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts)
