"""The sweep's outputs: sweep.json, report.md (tables) and PNG plots of latency and
throughput against concurrency, mesh beside in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from bench.machine import markdown
from bench.sweep_load import LevelResult, median_ratio

COLUMNS = ("concurrency", "ttft_p50_ms", "ttft_p95_ms", "itl_p50_ms", "itl_p95_ms", "e2e_p50_ms", "e2e_p95_ms",
           "qps", "tokens_per_s", "errors")  # fmt: skip


def _table(rows: list[dict[str, float]]) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[c]) for c in COLUMNS) + " |" for row in rows]
    return lines


def _plot(path: Path, results: dict[str, list[LevelResult]], metric: str, label: str) -> None:
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    for side, levels in results.items():
        axes.plot([r.concurrency for r in levels], [r.summary()[metric] for r in levels], marker="o", label=side)
    axes.set_xscale("log", base=2)
    axes.set_xlabel("concurrency")
    axes.set_ylabel(label)
    axes.legend()
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)


def write_report(
    out: Path,
    results: dict[str, list[LevelResult]],
    ingest: dict[str, float],
    summary: dict[str, float],
    machine: dict[str, Any] | None = None,
) -> None:
    """Write every output of one sweep under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    rows = {side: [r.summary() for r in levels] for side, levels in results.items()}
    overhead = [
        {"concurrency": m.concurrency, "e2e_mesh_over_in_process": median_ratio(m.e2e, i.e2e)}
        for m, i in zip(results["mesh"], results["in_process"], strict=True)
    ]
    everything = {**rows, "overhead": overhead, "ingest": ingest, "machine": machine or {}, **summary}
    (out / "sweep.json").write_text(json.dumps(everything, indent=2))
    for metric, label in (("e2e_p50_ms", "end-to-end p50 (ms)"), ("ttft_p50_ms", "time to first token p50 (ms)"),
                          ("qps", "answered queries/s"), ("tokens_per_s", "tokens/s")):  # fmt: skip
        _plot(out / f"{metric}.png", results, metric, label)
    lines = ["# Concurrency sweep", "", *(markdown(machine) if machine else [])]
    lines += ["## Mesh (gRPC through Envoy)", "", *_table(rows["mesh"]), ""]
    lines += ["## In-process pipeline", "", *_table(rows["in_process"]), "", "## Mesh overhead", ""]
    lines += [f"- c={o['concurrency']}: {o['e2e_mesh_over_in_process']}x" for o in overhead]
    lines += ["", "## Ingestion", "", *(f"- {k}: {v}" for k, v in ingest.items()), "", "## Summary", ""]
    lines += [f"- {k}: {v}" for k, v in summary.items()]
    lines += ["", "![e2e](e2e_p50_ms.png) ![ttft](ttft_p50_ms.png) ![qps](qps.png) ![tokens](tokens_per_s.png)"]
    (out / "report.md").write_text("\n".join(lines) + "\n")
