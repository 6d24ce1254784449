"""bench.peers_pipeline and the peers report's headline: rounds folded into figures, the
ragmesh/Haystack comparison, the table, and the four keys of the last JSON line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import peers_generation
from bench.peers import RAGMESH as EMBEDDER
from bench.peers import headline
from bench.peers_pipeline import HAYSTACK, RAGMESH, LevelFigures, comparison, figures, table
from bench.peers_report import Row, write
from bench.sweep_load import LevelResult


def _level(qps_wall: float, latencies: list[float], errors: int = 0, prompt: int = 300) -> LevelResult:
    """A level that answered len(latencies) queries in ``qps_wall`` seconds."""
    return LevelResult(1, e2e=latencies, prompt_tokens=[prompt] * len(latencies), errors=errors, wall=qps_wall)


def test_figures_are_the_median_round_by_queries_per_second_with_its_latencies() -> None:
    rounds = [_level(10.0, [1.0, 1.0]), _level(2.0, [0.4, 0.6], errors=1), _level(4.0, [0.8, 0.9])]
    got = figures(rounds)
    # Queries/s 0.2, 1.0, 0.5: the median round is the third, its latencies come with it.
    assert (got.qps, got.p50_ms) == (0.5, 900.0)
    assert got.errors == 1  # errors of every round, not only the median one
    assert got.prompt_tokens_p50 == 300
    with pytest.raises(ValueError, match="no rounds"):
        figures([])


def _both(ours: tuple[float, float], theirs: tuple[float, float]) -> dict[str, dict[int, LevelFigures]]:
    def at(qps_c8: float, p50_c1: float) -> dict[int, LevelFigures]:
        return {1: LevelFigures(0.4, p50_c1, p50_c1, 200, 0), 8: LevelFigures(qps_c8, 9000.0, 9500.0, 200, 0)}

    return {RAGMESH: at(*ours), HAYSTACK: at(*theirs)}


def test_the_comparison_is_ragmesh_over_haystack() -> None:
    got = comparison(_both((1.5, 1800.0), (0.5, 3600.0)))
    assert got == {"pipeline_qps_vs_haystack_c8": 3.0, "pipeline_p50_vs_haystack_c1": 0.5}


def test_the_table_has_a_line_per_system_and_level() -> None:
    lines = table(_both((1.5, 1800.0), (0.5, 3600.0)))
    assert len(lines) == 2 + 4
    assert lines[2].startswith(f"| {RAGMESH} |") and "| 1 | 0.400 | 1800 |" in lines[2]
    assert lines[5].startswith(f"| {HAYSTACK} |") and "| 8 | 0.500 | 9000 |" in lines[5]


def _row(system: str, throughput: float, ratio: float) -> Row:
    return Row(system, "how", throughput, ratio, None, None, [ratio])


def test_the_headline_carries_the_four_figures_the_peers_are_judged_by() -> None:
    embedding = [_row("in-process", 500.0, 1.0), _row(EMBEDDER, 460.0, 0.92), _row("infinity-emb", 300.0, 0.6)]
    generation = [_row("llama.cpp in-process", 50.0, 1.0), _row(peers_generation.RAGMESH, 49.0, 0.98),
                  _row(peers_generation.LLAMA_SERVER, 45.0, 0.9)]  # fmt: skip
    got = headline(embedding, generation, _both((1.5, 1800.0), (0.5, 3600.0)))
    assert got["embedder_ratio"] == 0.92
    assert got["generator_vs_llamacpp_server"] == round(49.0 / 45.0, 3)
    assert (got["pipeline_qps_vs_haystack_c8"], got["pipeline_p50_vs_haystack_c1"]) == (3.0, 0.5)
    assert "generator_vs_llamacpp_server" not in headline(embedding, [], {})


def test_the_pipeline_table_goes_into_the_report_and_peers_json(tmp_path: Path) -> None:
    markdown = table(_both((1.5, 1800.0), (0.5, 3600.0)))
    report = write(tmp_path, {}, {"date": "today"}, ["a note"], {"Whole pipeline": (markdown, {"x": 1})})
    text = report.read_text()
    assert "## Whole pipeline" in text and markdown[2] in text
    assert text.index("## Whole pipeline") < text.index("## Notes")
    assert json.loads((tmp_path / "peers.json").read_text())["tables"] == {"Whole pipeline": {"x": 1}}
