"""Parse functions that misbehave on cue, injected into the parser pool's child processes by tests.

They live in a light module of their own (module-level, so a child imports them by name)
because a child imports whatever module its function comes from.
"""

from __future__ import annotations

import os
import signal
import time

from services.parsing import ParsedDocument, ParseLimits, Segment


def echo_parse(content: bytes, media_type: str | None, file_name: str | None, limits: ParseLimits) -> ParsedDocument:
    """One segment holding the content as text, plus the child's pid as the title."""
    return ParsedDocument("text/plain", [Segment(content.decode(), "paragraph")], title=str(os.getpid()))


def hang_parse(content: bytes, media_type: str | None, file_name: str | None, limits: ParseLimits) -> ParsedDocument:
    """Parses ``hang`` forever; anything else is echoed."""
    if content == b"hang":
        while True:
            time.sleep(3600)
    return echo_parse(content, media_type, file_name, limits)


def greedy_parse(content: bytes, media_type: str | None, file_name: str | None, limits: ParseLimits) -> ParsedDocument:
    """Parses ``allocate`` by allocating 64 MiB blocks without end; anything else is echoed."""
    if content == b"allocate":
        blocks = []
        while True:
            blocks.append(bytearray(64 * 1024 * 1024))
    if content == b"crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    if content == b"bug":
        raise ZeroDivisionError("division by zero in a parser")
    return echo_parse(content, media_type, file_name, limits)
