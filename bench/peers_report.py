"""The peers benchmark's figures: per-round samples folded into one row per system (the
median round by ratio to the in-process baseline of the same round), the Markdown report
and peers.json. Pure logic (but for timing one call), unit-tested in tests/unit/test_bench_peers_report.py."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Sample:
    """One system measured once: items (texts or tokens) per second and per-call latencies."""

    throughput: float
    latencies_s: list[float] = field(default_factory=list)
    #: CPU seconds the benchmark's own process spent driving the calls (the client's cost).
    client_cpu_s: float | None = None


@dataclass(frozen=True)
class Row:
    """One system's line of a table: the median round's figures."""

    system: str
    how: str
    throughput: float
    ratio: float
    p50_ms: float | None
    p95_ms: float | None
    ratios: list[float]
    client_cpu_ms_per_call: float | None = None


def with_client_cpu(measure: Callable[[], Sample]) -> Sample:
    """``measure()``, with the CPU time this process spent in it (warm-up calls included)."""
    began = time.process_time()
    sample = measure()
    return replace(sample, client_cpu_s=time.process_time() - began)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values`` (inclusive method, as bench.embedder)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def fold(system: str, how: str, samples: list[Sample], baselines: list[float]) -> Row:
    """The row of ``system`` from its samples and the baseline throughput of each round."""
    if not samples or len(samples) != len(baselines):
        raise ValueError(f"{system}: {len(samples)} samples for {len(baselines)} baseline rounds")
    ratios = [s.throughput / b for s, b in zip(samples, baselines, strict=True)]
    # The median round (by ratio), whole: its throughput and latencies belong together.
    median = sorted(range(len(ratios)), key=ratios.__getitem__)[len(ratios) // 2]
    chosen = samples[median]
    latencies = chosen.latencies_s
    return Row(
        system=system,
        how=how,
        throughput=round(chosen.throughput, 1),
        ratio=round(ratios[median], 3),
        p50_ms=round(percentile(latencies, 50) * 1000, 1) if latencies else None,
        p95_ms=round(percentile(latencies, 95) * 1000, 1) if latencies else None,
        ratios=[round(r, 3) for r in ratios],
        client_cpu_ms_per_call=(
            round(chosen.client_cpu_s * 1000 / len(latencies), 2) if chosen.client_cpu_s is not None and latencies
            else None
        ),
    )  # fmt: skip


def baseline_row(system: str, how: str, baselines: list[float]) -> Row:
    """The in-process baseline's own row: its median throughput, ratio 1 by definition."""
    if not baselines:
        raise ValueError(f"{system}: no baseline rounds")
    throughput = round(statistics.median(baselines), 1)
    return Row(system, how, throughput, 1.0, None, None, [1.0] * len(baselines))


def table(rows: list[Row], unit: str) -> list[str]:
    """A Markdown table of ``rows`` (throughput in ``unit``)."""
    lines = [
        f"| system | how it is reached | throughput ({unit}) | ratio to in-process | p50 (ms) | p95 (ms) "
        "| client CPU (ms/call) | ratio per round |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        p50, p95, cpu = (_cell(v, 1) for v in (row.p50_ms, row.p95_ms, row.client_cpu_ms_per_call))
        per_round = ", ".join(f"{r:.3f}" for r in row.ratios)
        lines.append(
            f"| {row.system} | {row.how} | {row.throughput:.1f} | {row.ratio:.3f}x | {p50} | {p95} | {cpu} "
            f"| {per_round} |"
        )
    return lines


def _cell(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def ratios(rows: list[Row]) -> dict[str, float]:
    """system -> ratio, for the last JSON line."""
    return {row.system: row.ratio for row in rows}


def write(out: Path, sections: dict[str, tuple[str, list[Row]]], facts: dict[str, Any], notes: list[str]) -> Path:
    """Write ``out``/peers.json and ``out``/report.md; ``sections`` maps a title to (unit, rows)."""
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        **facts,
        "sections": {title: {"unit": unit, "rows": [row.__dict__ for row in rows]} for title, (unit, rows) in
                     sections.items()},
    }  # fmt: skip
    (out / "peers.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = ["# ragmesh beside its peers", ""]
    lines += [f"- {key}: {value}" for key, value in facts.items() if not isinstance(value, dict | list)]
    for title, (unit, rows) in sections.items():
        lines += ["", f"## {title}", "", *table(rows, unit)]
    lines += ["", "## Notes", "", *(f"- {note}" for note in notes)]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report
