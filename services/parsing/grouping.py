"""Structure-aware packing of segments into chunk-sized groups.

Consecutive segments of the same section (heading path) and page are packed up to the
token budget; a heading starts a group and joins the content after it; a segment is never
split here, so a table's rows stay together whenever the table fits, and a segment over
the budget is a group of its own (the caller splits it by tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.parsing.model import Segment

#: What joins the segments of a group into one chunk text.
SEPARATOR = "\n\n"

_Key = tuple[tuple[str, ...], int | None]


@dataclass(frozen=True)
class Group:
    """A group's chunk text with the metadata every chunk carries."""

    text: str
    page: int | None
    section: tuple[str, ...]


def group_segments(segments: Sequence[Segment], token_counts: Sequence[int], budget: int) -> list[list[int]]:
    """Indices of ``segments`` in groups of at most ``budget`` tokens (one oversized segment alone).

    ``token_counts[i]`` is segment i's token count (without special tokens).
    """
    if len(segments) != len(token_counts):
        raise ValueError(f"{len(segments)} segments but {len(token_counts)} token counts")
    groups: list[list[int]] = []
    current: list[int] = []
    tokens = 0
    key: _Key = ((), None)
    headings_only = False
    for index, segment in enumerate(segments):
        count = token_counts[index]
        new_key: _Key = (segment.section, segment.page)
        if current and not _joins(segment, new_key, key, headings_only, tokens + count <= budget):
            groups.append(current)
            current = []
        if not current:
            current, tokens, headings_only = [index], count, segment.kind == "heading"
        else:
            current.append(index)
            tokens += count
            headings_only = headings_only and segment.kind == "heading"
        key = new_key
    if current:
        groups.append(current)
    return groups


def _joins(segment: Segment, new_key: _Key, key: _Key, headings_only: bool, fits: bool) -> bool:
    """Whether ``segment`` may join the current group (whose key and state are given)."""
    if not fits:
        return False
    if headings_only:
        # Headings wait for their content: the same section, or a subsection heading right under them.
        section, page = key
        return new_key[1] == page and new_key[0][: len(section)] == section
    return segment.kind != "heading" and new_key == key


def join_group(segments: Sequence[Segment], indices: Sequence[int]) -> Group:
    """The chunk text, page and section of one group from :func:`group_segments`."""
    members = [segments[index] for index in indices]
    return Group(
        text=SEPARATOR.join(member.text for member in members),
        page=members[0].page,
        section=members[-1].section,
    )
