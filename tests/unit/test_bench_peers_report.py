"""bench.peers_report: rounds folded into rows (the median round, whole), the table, the files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.peers_report import Sample, baseline_row, fold, percentile, ratios, table, write


def test_a_row_is_its_median_round_by_ratio_with_that_rounds_latencies() -> None:
    baselines = [200.0, 100.0, 250.0]
    samples = [Sample(180.0, [0.01, 0.02]), Sample(40.0, [0.5]), Sample(100.0, [0.1, 0.3])]
    row = fold("peer", "HTTP", samples, baselines)
    # Ratios 0.9, 0.4, 0.4 -> sorted 0.4, 0.4, 0.9: the median is a 0.4 round, not the 0.9 one.
    assert row.ratio == 0.4
    assert row.ratios == [0.9, 0.4, 0.4]
    # Ties keep round order (sorted is stable): the middle of rounds 2, 3, 1 is round 3.
    assert (row.throughput, row.p50_ms, row.p95_ms) == (100.0, 200.0, 290.0)


def test_the_median_round_keeps_throughput_and_latency_together() -> None:
    row = fold("peer", "HTTP", [Sample(10.0, [1.0]), Sample(30.0, [3.0]), Sample(20.0, [2.0])], [100.0] * 3)
    assert (row.throughput, row.ratio, row.p50_ms) == (20.0, 0.2, 2000.0)


def test_client_cpu_is_per_call_of_the_chosen_round() -> None:
    row = fold("peer", "HTTP", [Sample(50.0, [0.1] * 4, client_cpu_s=0.006)], [100.0])
    assert row.client_cpu_ms_per_call == 1.5
    assert table([row], "texts/s")[2].startswith("| peer | HTTP | 50.0 | 0.500x | 100.0 | 100.0 | 1.5 |")


def test_the_baseline_row_has_ratio_one_and_no_latency() -> None:
    row = baseline_row("in-process", "here", [210.0, 190.0, 200.0])
    assert (row.throughput, row.ratio, row.p50_ms, row.p95_ms) == (200.0, 1.0, None, None)
    assert row.ratios == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="no baseline rounds"):
        baseline_row("in-process", "here", [])


def test_rounds_must_match_baselines() -> None:
    with pytest.raises(ValueError, match="2 samples for 3 baseline rounds"):
        fold("peer", "HTTP", [Sample(1.0), Sample(2.0)], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="0 samples"):
        fold("peer", "HTTP", [], [])


def test_percentile_of_one_value_and_of_many() -> None:
    assert percentile([0.5], 95) == 0.5
    assert percentile([float(i) for i in range(1, 101)], 50) == pytest.approx(50.5)
    assert percentile([float(i) for i in range(1, 101)], 95) == pytest.approx(95.05)


def test_the_table_shows_every_row_with_its_ratio_and_dashes_for_missing_latency() -> None:
    rows = [baseline_row("base", "here", [100.0]), fold("peer", "HTTP", [Sample(40.0, [0.25])], [100.0])]
    lines = table(rows, "texts/s")
    assert lines[0].startswith("| system | how it is reached | throughput (texts/s) | ratio to in-process")
    assert lines[2] == "| base | here | 100.0 | 1.000x | — | — | — | 1.000 |"
    assert lines[3] == "| peer | HTTP | 40.0 | 0.400x | 250.0 | 250.0 | — | 0.400 |"
    assert ratios(rows[1:]) == {"peer": 0.4}


def test_write_puts_json_and_markdown_side_by_side(tmp_path: Path) -> None:
    rows = [baseline_row("base", "here", [100.0]), fold("peer", "HTTP", [Sample(50.0, [0.1])], [100.0])]
    report = write(tmp_path / "peers", {"Embedding": ("texts/s", rows)}, {"date": "today", "n": {"x": 1}}, ["a note"])
    assert report == tmp_path / "peers" / "report.md"
    text = report.read_text()
    assert "- date: today" in text and "## Embedding" in text and "| peer | HTTP | 50.0 | 0.500x" in text
    assert "- a note" in text and "- n:" not in text  # nested facts stay in the JSON only
    payload = json.loads((tmp_path / "peers" / "peers.json").read_text())
    assert payload["n"] == {"x": 1}
    assert payload["sections"]["Embedding"]["rows"][1]["ratio"] == 0.5
