"""Helpers every format parser shares: text decoding, the heading path, the segment sink."""

from __future__ import annotations

import re

from services.parsing.model import DocumentRejected, ParseLimits, Segment

_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")


def decode_text(content: bytes) -> str:
    """Text of a text file: UTF-8 (with or without BOM), UTF-16 by its BOM, else Windows-1252."""
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        return content.decode("utf-16", errors="replace")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        # cp1252 leaves five bytes undefined: replace them rather than fail.
        return content.decode("cp1252", errors="replace")


def clean(text: str) -> str:
    """``text`` with runs of spaces collapsed and blank edges removed (newlines kept)."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


class HeadingPath:
    """The heading path in force while walking a document: a stack of (level, title)."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> tuple[str, ...]:
        """Start a heading of ``level`` (1 = top): it replaces any heading at that level or deeper."""
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, title))
        return self.path

    @property
    def path(self) -> tuple[str, ...]:
        """The titles from the top heading down to the current one."""
        return tuple(title for _, title in self._stack)


class SegmentSink:
    """Collects segments in order, dropping empty ones and enforcing ``max_chars``."""

    def __init__(self, limits: ParseLimits) -> None:
        self.limits = limits
        self.segments: list[Segment] = []
        self._chars = 0

    def add(self, text: str, kind: str, section: tuple[str, ...], page: int | None = None) -> None:
        """Append a segment of cleaned ``text`` (code keeps its layout) unless it is empty."""
        text = text.strip("\n").rstrip() if kind == "code" else clean(text)
        if not text:
            return
        self._chars += len(text)
        if self._chars > self.limits.max_chars:
            raise DocumentRejected(f"document has more than {self.limits.max_chars} characters of text (max_chars)")
        self.segments.append(Segment(text=text, kind=kind, page=page, section=section))
