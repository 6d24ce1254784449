"""Structure-aware packing of segments into chunk-sized groups."""

from __future__ import annotations

import pytest

from services.parsing import Segment, group_segments, join_group
from services.parsing.grouping import Group

OPS = ("Operations",)
DOCK = ("Operations", "Docking")


def _seg(kind: str, section: tuple[str, ...] = OPS, page: int | None = None, text: str = "t") -> Segment:
    return Segment(text, kind, page, section)


def test_same_section_packs_up_to_the_budget() -> None:
    segments = [_seg("paragraph") for _ in range(5)]
    assert group_segments(segments, [40, 40, 20, 50, 50], 100) == [[0, 1, 2], [3, 4]]


def test_a_heading_joins_the_content_after_it_never_the_one_before() -> None:
    segments = [
        _seg("heading", OPS),
        _seg("paragraph", OPS),
        _seg("heading", DOCK),
        _seg("paragraph", DOCK),
        _seg("list_item", DOCK),
    ]
    assert group_segments(segments, [2, 10, 2, 10, 10], 100) == [[0, 1], [2, 3, 4]]


def test_a_heading_right_above_a_subheading_stays_with_it() -> None:
    segments = [_seg("heading", OPS), _seg("heading", DOCK), _seg("paragraph", DOCK), _seg("heading", ("Power",))]
    groups = group_segments(segments, [2, 2, 10, 2], 100)
    assert groups == [[0, 1, 2], [3]]
    assert join_group(segments, groups[0]).section == DOCK


def test_section_and_page_changes_start_a_group() -> None:
    segments = [_seg("text", OPS, 1), _seg("text", OPS, 2), _seg("text", DOCK, 2), _seg("text", DOCK, 2)]
    assert group_segments(segments, [5, 5, 5, 5], 100) == [[0], [1], [2, 3]]


def test_a_table_that_fits_moves_whole_to_the_next_group() -> None:
    segments = [_seg("paragraph"), _seg("table"), _seg("paragraph")]
    assert group_segments(segments, [60, 50, 10], 100) == [[0], [1, 2]]


def test_an_oversized_segment_is_a_group_of_its_own() -> None:
    segments = [_seg("paragraph"), _seg("table"), _seg("paragraph")]
    assert group_segments(segments, [10, 500, 10], 100) == [[0], [1], [2]]


def test_join_group_text_page_and_section() -> None:
    segments = [_seg("heading", DOCK, 3, "Docking"), _seg("paragraph", DOCK, 3, "Port 3 is for cargo.")]
    assert join_group(segments, [0, 1]) == Group("Docking\n\nPort 3 is for cargo.", 3, DOCK)


def test_counts_must_match() -> None:
    with pytest.raises(ValueError, match="2 segments but 1 token counts"):
        group_segments([_seg("text"), _seg("text")], [1], 10)
