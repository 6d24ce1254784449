"""The peers benchmark's figures: per-round samples folded into one row per system (the
median round by ratio to the in-process baseline measured with it), the Markdown report
and peers.json. Pure logic, unit-tested in tests/unit/bench/test_peers_report.py."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Sample:
    """One system measured once: items (texts or tokens) per second, per-call latencies, and
    the CPU seconds spent on it by the benchmark's process (client) and the server's."""

    throughput: float
    latencies_s: list[float] = field(default_factory=list)
    items: float = 0.0
    client_cpu_s: float | None = None
    server_cpu_s: float | None = None

    def cpu_ms_per_item(self) -> float | None:
        """Client plus server CPU per item: the cost, which contention does not inflate."""
        if self.client_cpu_s is None or not self.items:
            return None
        return (self.client_cpu_s + (self.server_cpu_s or 0.0)) * 1000 / self.items


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
    #: Client + server CPU per item, the client's share of it, and the baseline's over this.
    cpu_ms_per_item: float | None = None
    client_cpu_ms_per_item: float | None = None
    cpu_ratio: float | None = None


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values`` (inclusive method, as bench.embedder)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def fold(system: str, how: str, samples: list[Sample], baselines: list[Sample]) -> Row:
    """The row of ``system`` from its samples and the in-process baseline of each round."""
    if not samples or len(samples) != len(baselines):
        raise ValueError(f"{system}: {len(samples)} samples for {len(baselines)} baseline rounds")
    ratios = [s.throughput / b.throughput for s, b in zip(samples, baselines, strict=True)]
    # The median round (by ratio), whole: its throughput, latencies and CPU belong together.
    median = sorted(range(len(ratios)), key=ratios.__getitem__)[len(ratios) // 2]
    chosen, base = samples[median], baselines[median]
    latencies = chosen.latencies_s
    cpu, base_cpu = chosen.cpu_ms_per_item(), base.cpu_ms_per_item()
    client = chosen.client_cpu_s * 1000 / chosen.items if chosen.client_cpu_s is not None and chosen.items else None
    return Row(
        system=system,
        how=how,
        throughput=round(chosen.throughput, 1),
        ratio=round(ratios[median], 3),
        p50_ms=round(percentile(latencies, 50) * 1000, 1) if latencies else None,
        p95_ms=round(percentile(latencies, 95) * 1000, 1) if latencies else None,
        ratios=[round(r, 3) for r in ratios],
        cpu_ms_per_item=None if cpu is None else round(cpu, 2),
        client_cpu_ms_per_item=None if client is None else round(client, 2),
        cpu_ratio=round(base_cpu / cpu, 3) if cpu and base_cpu else None,
    )


def baseline_row(system: str, how: str, baselines: list[Sample]) -> Row:
    """The in-process baseline's own row: its median measurement by throughput, ratio 1 (no
    per-round ratios: every system had its own baseline measurements)."""
    if not baselines:
        raise ValueError(f"{system}: no baseline rounds")
    median = sorted(baselines, key=lambda s: s.throughput)[len(baselines) // 2]
    cpu = median.cpu_ms_per_item()
    return Row(
        system, how, round(median.throughput, 1), 1.0, None, None, [],
        cpu_ms_per_item=None if cpu is None else round(cpu, 2), cpu_ratio=1.0 if cpu else None,
    )  # fmt: skip


def _cell(value: float | None, digits: int, suffix: str = "") -> str:
    return "—" if value is None else f"{value:.{digits}f}{suffix}"


def table(rows: list[Row], unit: str, item: str) -> list[str]:
    """A Markdown table of ``rows`` (throughput in ``unit``, CPU per ``item``)."""
    lines = [
        f"| system | how it is reached | throughput ({unit}) | ratio to in-process | p50 (ms) | p95 (ms) "
        f"| CPU ms per {item}, all processes (client) | CPU-efficiency ratio | ratio per round |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        cpu = _cell(row.cpu_ms_per_item, 2)
        if row.client_cpu_ms_per_item is not None:
            cpu += f" ({row.client_cpu_ms_per_item:.2f})"
        per_round = ", ".join(f"{r:.3f}" for r in row.ratios) or "—"
        lines.append(
            f"| {row.system} | {row.how} | {row.throughput:.1f} | {row.ratio:.3f}x | {_cell(row.p50_ms, 1)} "
            f"| {_cell(row.p95_ms, 1)} | {cpu} | {_cell(row.cpu_ratio, 3, 'x')} | {per_round} |"
        )
    return lines


def ratios(rows: list[Row]) -> dict[str, float]:
    """system -> ratio, for the last JSON line."""
    return {row.system: row.ratio for row in rows}


def write(
    out: Path, sections: dict[str, tuple[str, str, list[Row]]], facts: dict[str, Any], notes: list[str],
    tables: dict[str, tuple[list[str], Any]] | None = None,
) -> Path:  # fmt: skip
    """Write ``out``/peers.json and ``out``/report.md; ``sections``: title -> (unit, item, rows);
    ``tables``: title -> (Markdown lines, figures for peers.json) of sections with other columns."""
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        **facts,
        "sections": {title: {"unit": unit, "rows": [row.__dict__ for row in rows]} for title, (unit, _, rows) in
                     sections.items()},
        "tables": {title: figures for title, (_, figures) in (tables or {}).items()},
    }  # fmt: skip
    (out / "peers.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = ["# ragmesh beside its peers", ""]
    lines += [f"- {key}: {value}" for key, value in facts.items() if not isinstance(value, dict | list)]
    for title, (unit, item, rows) in sections.items():
        lines += ["", f"## {title}", "", *table(rows, unit, item)]
    for title, (markdown, _) in (tables or {}).items():
        lines += ["", f"## {title}", "", *markdown]
    lines += ["", "## Notes", "", *(f"- {note}" for note in notes)]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report
