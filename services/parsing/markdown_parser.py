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

# Built once: setting up the rule chains costs more than parsing a small document.
_PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def parse_markdown(content: bytes, limits: ParseLimits) -> ParsedDocument:
    """Segments of a Markdown document."""
    tokens = _PARSER.parse(decode_text(content))
    walker = _Walker(SegmentSink(limits))
    for token in tokens:
        walker.token(token)
    segments = walker.sink.segments
    title = next((s.text for s in segments if s.kind == "heading"), None)
    return ParsedDocument(MARKDOWN, segments, pages=None, title=title)


class _Walker:
    """Turns markdown-it's flat token stream into segments, tracking headings, lists and tables."""

    def __init__(self, sink: SegmentSink) -> None:
        self.sink = sink
        self.headings = HeadingPath()
        self.list_depth = 0
        self.heading_level: int | None = None
        self.table: list[str] | None = None
        self.row: list[str] = []

    def token(self, token: Token) -> None:
        kind = token.type
        if kind == "heading_open":
            self.heading_level = int(token.tag[1])
        elif kind == "heading_close":
            self.heading_level = None
        elif kind in ("list_item_open", "list_item_close"):
            self.list_depth += 1 if kind == "list_item_open" else -1
        elif kind.startswith(("table_", "tr_")):
            self._table(kind)
        elif kind in ("fence", "code_block"):
            self.sink.add(token.content, "code", self.headings.path)
        elif kind == "html_block":
            text = BeautifulSoup(token.content, "lxml").get_text(" ", strip=True)
            self.sink.add(text, "paragraph", self.headings.path)
        elif kind == "inline":
            self._inline(_inline_text(token))

    def _table(self, kind: str) -> None:
        if kind == "table_open":
            self.table = []
        elif kind == "table_close" and self.table is not None:
            self.sink.add("\n".join(self.table), "table", self.headings.path)
            self.table = None
        elif kind == "tr_open":
            self.row = []
        elif kind == "tr_close" and self.table is not None and any(self.row):
            self.table.append(" | ".join(self.row))

    def _inline(self, text: str) -> None:
        if self.table is not None:
            self.row.append(" ".join(text.split()))
        elif self.heading_level is not None:
            if text.strip():
                title = " ".join(text.split())
                self.sink.add(text, "heading", self.headings.enter(self.heading_level, title))
        else:
            self.sink.add(text, "list_item" if self.list_depth else "paragraph", self.headings.path)


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
