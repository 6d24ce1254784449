"""``--grid`` options: settings checked by the experiments file's checks, every combination
in order (baseline first), a collection per chunking."""

from __future__ import annotations

import pytest

from ragmesh.eval.grid import (
    CELL_SETTINGS,
    CHUNKING,
    MAX_CELLS,
    NOT_IN_GRIDS,
    QUERY_SETTINGS,
    GridError,
    cells,
    chunkings,
    parse_axes,
    parse_axis,
)
from ragmesh.vocabulary.experiments.settings import SETTING_CHECKS


def test_values_are_typed_and_checked_by_the_experiments_file_rules() -> None:
    assert parse_axis("chunk_tokens=128,256").values == (128, 256)
    assert parse_axis("mmr_lambda=0.5,1").values == (0.5, 1)
    assert parse_axis("rerank = none , mmr").values == ("none", "mmr")
    with pytest.raises(GridError, match=r"rerank=bm42: must be one of none, mmr, cross_encoder"):
        parse_axis("rerank=none,bm42")
    with pytest.raises(GridError, match=r"chunk_tokens=8: must be between 16 and 8192"):
        parse_axis("chunk_tokens=8,128")
    with pytest.raises(GridError, match="not a variant setting"):
        parse_axis("flavour=a,b")
    with pytest.raises(GridError, match="expected SETTING=VALUE"):
        parse_axis("rerank")
    with pytest.raises(GridError, match="compare them with --experiment"):
        parse_axis("prompt_template=terse,default")
    with pytest.raises(GridError, match="repeated"):
        parse_axis("rerank=mmr,mmr")


def test_every_combination_with_the_first_axis_slowest_and_a_collection_per_chunking() -> None:
    grid = cells(parse_axes(["chunk_tokens=128,256", "rerank=none,mmr"]), "eval_shipped")
    assert [c.label for c in grid] == [
        "chunk_tokens=128 rerank=none",
        "chunk_tokens=128 rerank=mmr",
        "chunk_tokens=256 rerank=none",
        "chunk_tokens=256 rerank=mmr",
    ]
    assert chunkings(grid) == {"eval_shipped_c128_o16": (128, 16), "eval_shipped_c256_o32": (256, 32)}
    assert grid[1].query_options == {"rerank": "mmr"} and grid[1].collection == "eval_shipped_c128_o16"


def test_query_settings_alone_share_the_default_collection() -> None:
    grid = cells(parse_axes(["search_mode=dense,hybrid", "top_k=5,20"]), "eval_x")
    assert chunkings(grid) == {"eval_x": (0, 0)}
    dense = {"search_mode": "dense"}
    assert [(c.query_options, c.top_k) for c in grid][:2] == [(dense, 5), (dense, 20)]


def test_chunkings_that_cannot_work_and_oversized_grids_are_refused() -> None:
    with pytest.raises(GridError, match="not less than chunk_tokens"):
        cells(parse_axes(["chunk_tokens=64", "overlap_tokens=64"]), "c")
    with pytest.raises(GridError, match="needs chunk_tokens"):
        cells(parse_axes(["overlap_tokens=8,16"]), "c")
    with pytest.raises(GridError, match="given twice"):
        parse_axes(["rerank=none", "rerank=mmr"])
    many = ",".join(str(16 + i) for i in range(MAX_CELLS + 1))
    with pytest.raises(GridError, match=f"at most {MAX_CELLS}"):
        parse_axes([f"chunk_tokens={many}"])


def test_a_cell_s_query_settings_win_over_the_run_s() -> None:
    from ragmesh.eval.runner import Settings

    cell = cells(parse_axes(["search_mode=dense,sparse", "temperature=0.5"]), "c")[0]
    settings = Settings("c", mode="hybrid", query_options=cell.query_options)
    assert settings.options(temperature=0.0, max_new_tokens=8) == {
        "temperature": 0.5,
        "max_new_tokens": 8,
        "search_mode": "dense",
        "variant": "",
    }


def test_every_variant_setting_is_applied_by_a_grid_or_refused() -> None:
    """A setting the experiments file gains must reach the cells' queries (or be refused with
    its reason): a grid that accepts a setting and drops it compares a cell with itself."""
    handled = {*CHUNKING, *QUERY_SETTINGS, *CELL_SETTINGS, *NOT_IN_GRIDS}
    assert handled == set(SETTING_CHECKS)
    (_, sentences) = cells(parse_axes(["context=chunks,sentences"]), "eval_set")
    assert sentences.query_options == {"context": "sentences"}
