"""bench.peers_report: rounds folded into rows (the median round, whole), the table, the files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.peers_report import Sample, baseline_row, fold, percentile, ratios, table, write


def _base(*throughputs: float) -> list[Sample]:
    return [Sample(t) for t in throughputs]


def test_a_row_is_its_median_round_by_ratio_with_that_rounds_latencies() -> None:
    samples = [Sample(180.0, [0.01, 0.02]), Sample(40.0, [0.5]), Sample(100.0, [0.1, 0.3])]
    row = fold("peer", "HTTP", samples, _base(200.0, 100.0, 250.0))
    # Ratios 0.9, 0.4, 0.4 -> sorted 0.4, 0.4, 0.9: the median is a 0.4 round, not the 0.9 one.
    assert row.ratio == 0.4
    assert row.ratios == [0.9, 0.4, 0.4]
    # Ties keep round order (sorted is stable): the middle of rounds 2, 3, 1 is round 3.
    assert (row.throughput, row.p50_ms, row.p95_ms) == (100.0, 200.0, 290.0)


def test_the_median_round_keeps_throughput_and_latency_together() -> None:
    row = fold("peer", "HTTP", [Sample(10.0, [1.0]), Sample(30.0, [3.0]), Sample(20.0, [2.0])], _base(100, 100, 100))
    assert (row.throughput, row.ratio, row.p50_ms) == (20.0, 0.2, 2000.0)


def test_cpu_per_item_adds_client_and_server_and_compares_with_its_own_baseline() -> None:
    baseline = [Sample(100.0, items=1000, client_cpu_s=8.0)]  # 8 ms per text in-process
    peer = [Sample(50.0, [0.1], items=1000, client_cpu_s=2.0, server_cpu_s=14.0)]  # 2 + 14 = 16 ms per text
    row = fold("peer", "HTTP", peer, baseline)
    assert (row.cpu_ms_per_item, row.client_cpu_ms_per_item, row.cpu_ratio) == (16.0, 2.0, 0.5)
    assert baseline_row("base", "here", baseline).cpu_ms_per_item == 8.0
    unmeasured = fold("peer", "HTTP", [Sample(50.0, [0.1])], baseline)
    assert (unmeasured.cpu_ms_per_item, unmeasured.cpu_ratio) == (None, None)


def test_the_baseline_row_is_its_median_round_with_ratio_one_and_no_latency() -> None:
    row = baseline_row("in-process", "here", _base(210.0, 190.0, 200.0))
    assert (row.throughput, row.ratio, row.p50_ms, row.p95_ms) == (200.0, 1.0, None, None)
    assert row.ratios == []
    with pytest.raises(ValueError, match="no baseline rounds"):
        baseline_row("in-process", "here", [])


def test_rounds_must_match_baselines() -> None:
    with pytest.raises(ValueError, match="2 samples for 3 baseline rounds"):
        fold("peer", "HTTP", [Sample(1.0), Sample(2.0)], _base(1, 1, 1))
    with pytest.raises(ValueError, match="0 samples"):
        fold("peer", "HTTP", [], [])


def test_percentile_of_one_value_and_of_many() -> None:
    assert percentile([0.5], 95) == 0.5
    assert percentile([float(i) for i in range(1, 101)], 50) == pytest.approx(50.5)
    assert percentile([float(i) for i in range(1, 101)], 95) == pytest.approx(95.05)


def test_the_table_shows_every_row_with_its_ratios_and_dashes_for_what_was_not_measured() -> None:
    baseline = [Sample(100.0, items=100, client_cpu_s=1.0)]
    rows = [
        baseline_row("base", "here", baseline),
        fold("peer", "HTTP", [Sample(40.0, [0.25], items=100, client_cpu_s=0.5, server_cpu_s=1.5)], baseline),
        fold("other", "gRPC", [Sample(50.0, [0.1])], baseline),
    ]
    lines = table(rows, "texts/s", "text")
    assert lines[0].startswith("| system | how it is reached | throughput (texts/s) | ratio to in-process")
    assert "CPU ms per text" in lines[0]
    assert lines[2] == "| base | here | 100.0 | 1.000x | — | — | 10.00 | 1.000x | — |"
    assert lines[3] == "| peer | HTTP | 40.0 | 0.400x | 250.0 | 250.0 | 20.00 (5.00) | 0.500x | 0.400 |"
    assert lines[4] == "| other | gRPC | 50.0 | 0.500x | 100.0 | 100.0 | — | — | 0.500 |"
    assert ratios(rows[1:]) == {"peer": 0.4, "other": 0.5}


def test_write_puts_json_and_markdown_side_by_side(tmp_path: Path) -> None:
    rows = [baseline_row("base", "here", _base(100.0)), fold("peer", "HTTP", [Sample(50.0, [0.1])], _base(100.0))]
    facts = {"date": "today", "n": {"x": 1}}
    report = write(tmp_path / "peers", {"Embedding": ("texts/s", "text", rows)}, facts, ["a note"])
    assert report == tmp_path / "peers" / "report.md"
    text = report.read_text()
    assert "- date: today" in text and "## Embedding" in text and "| peer | HTTP | 50.0 | 0.500x" in text
    assert "- a note" in text and "- n:" not in text  # nested facts stay in the JSON only
    payload = json.loads((tmp_path / "peers" / "peers.json").read_text())
    assert payload["n"] == {"x": 1}
    assert payload["sections"]["Embedding"]["rows"][1]["ratio"] == 0.5
