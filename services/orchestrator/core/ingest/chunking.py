"""Cutting documents into chunks by the embedder's own tokens.

Chunks hold at most ``chunk_tokens`` tokens (so the embedder never truncates them),
consecutive chunks share about ``overlap_tokens``, and cuts fall on sentence or word
boundaries where one is near: a cut at whitespace re-tokenizes to exactly the same
tokens, so a chunk's count never grows when it is embedded on its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

_SENTENCE_END = ".!?。！？"


@dataclass(frozen=True)
class Piece:
    """One chunk of a document: its position, character span and text."""

    index: int
    start: int
    end: int
    text: str
    tokens: int


def chunk_id(document_id: str, index: int) -> str:
    """Stable id of a document's ``index``-th chunk (same document, same ids)."""
    digest = hashlib.sha1(document_id.encode(), usedforsecurity=False).hexdigest()[:16]
    return f"{digest}-{index:05d}"


def split(text: str, starts: Sequence[int], ends: Sequence[int], chunk_tokens: int, overlap_tokens: int) -> list[Piece]:
    """Chunks of ``text`` whose tokens have the given character spans."""
    count = len(starts)
    pieces: list[Piece] = []
    first = 0
    while first < count:
        stop = min(first + chunk_tokens, count)
        if stop < count:
            stop = _boundary_before(text, starts, ends, first + max(1, chunk_tokens // 2), stop)
        start_char, end_char = starts[first], ends[stop - 1]
        pieces.append(Piece(len(pieces), start_char, end_char, text[start_char:end_char], stop - first))
        if stop >= count:
            break
        first = _word_start_after(starts, ends, max(stop - overlap_tokens, first + 1), stop)
    return pieces


def _starts_word(starts: Sequence[int], ends: Sequence[int], index: int) -> bool:
    """Whether whitespace separates token ``index`` from the one before it."""
    return index == 0 or starts[index] > ends[index - 1]


def _boundary_before(text: str, starts: Sequence[int], ends: Sequence[int], low: int, stop: int) -> int:
    """The best cut in [low, stop]: after a sentence end, else at a word start, else ``stop``."""
    word_cut = None
    for cut in range(stop, low - 1, -1):
        if not _starts_word(starts, ends, cut):
            continue
        if text[ends[cut - 1] - 1] in _SENTENCE_END:
            return cut
        if word_cut is None:
            word_cut = cut
    return word_cut if word_cut is not None else stop


def _word_start_after(starts: Sequence[int], ends: Sequence[int], index: int, limit: int) -> int:
    """The first token at or after ``index`` (before ``limit``) that starts a word."""
    for candidate in range(index, limit):
        if _starts_word(starts, ends, candidate):
            return candidate
    return index
