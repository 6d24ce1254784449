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
           "prompt_tokens_p50", "qps", "tokens_per_s", "errors")  # fmt: skip


def _table(rows: list[dict[str, float]]) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[c]) for c in COLUMNS) + " |" for row in rows]
    return lines


def _cpu_table(levels: list[LevelResult]) -> list[str]:
    """CPU seconds per answered query of each part of the mesh, per level, and the generator's
    mean batch (rows per decode step)."""
    parts = sorted({name for r in levels for name in r.cpu_per_query} - {"generator_batch"})
    lines = ["| concurrency | " + " | ".join(parts) + " | total | generator batch |", "|" + "---|" * (len(parts) + 3)]
    for r in levels:
        cells = [f"{r.cpu_per_query.get(p, 0.0):.3f}" for p in parts]
        total = sum(r.cpu_per_query.get(p, 0.0) for p in parts)
        batch = r.cpu_per_query.get("generator_batch", 0.0)
        lines.append(f"| {r.concurrency} | {' | '.join(cells)} | {total:.3f} | {batch} |")
    return lines


def _plot(path: Path, results: dict[str, list[LevelResult]], metric: str, label: str) -> None:
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    for side, levels in results.items():
        if len(levels) < 2:  # a single level (the previous default's c=1) is in the tables
            continue
        axes.plot([r.concurrency for r in levels], [r.summary()[metric] for r in levels], marker="o", label=side)
    axes.set_xscale("log", base=2)
    axes.set_xlabel("concurrency")
    axes.set_ylabel(label)
    axes.legend()
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)


def write_report(  # noqa: PLR0917 - the sweep's outputs, each its own piece
    out: Path,
    results: dict[str, list[LevelResult]],
    ingest: dict[str, float],
    summary: dict[str, float],
    machine: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> None:
    """Write every output of one sweep under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    rows = {side: [r.summary() for r in levels] for side, levels in results.items()}
    cpu = {side: [{"concurrency": r.concurrency, **r.cpu_per_query} for r in runs] for side, runs in results.items()}
    overhead = [
        {"concurrency": m.concurrency, "e2e_mesh_over_in_process": median_ratio(m.e2e, i.e2e)}
        for m, i in zip(results["mesh"], results["in_process"], strict=True)
    ]
    everything: dict[str, Any] = {**rows, "cpu_per_query": cpu, "overhead": overhead, "ingest": ingest}
    everything |= {"machine": machine or {}, "settings": settings or {}, **summary}
    (out / "sweep.json").write_text(json.dumps(everything, indent=2))
    for metric, label in (("e2e_p50_ms", "end-to-end p50 (ms)"), ("ttft_p50_ms", "time to first token p50 (ms)"),
                          ("qps", "answered queries/s"), ("tokens_per_s", "tokens/s")):  # fmt: skip
        _plot(out / f"{metric}.png", results, metric, label)
    lines = ["# Concurrency sweep", "", *(markdown(machine) if machine else [])]
    lines += ["## Mesh (gRPC through Envoy)", "", *_table(rows["mesh"]), ""]
    lines += ["CPU seconds per answered query (components from their Prometheus `process_cpu_seconds_total`):", ""]
    lines += [*_cpu_table(results["mesh"]), ""]
    lines += ["## In-process pipeline", "", *_table(rows["in_process"]), ""]
    if "previous_default" in rows:
        lines += ["## Previous default (transformers backend, whole chunks), through its own mesh", ""]
        lines += [*_table(rows["previous_default"]), "", *_cpu_table(results["previous_default"]), ""]
    lines += ["## Mesh overhead", ""]
    lines += [f"- c={o['concurrency']}: {o['e2e_mesh_over_in_process']}x" for o in overhead]
    lines += ["", "## Ingestion", "", *(f"- {k}: {v}" for k, v in ingest.items()), "", "## Summary", ""]
    lines += [f"- {k}: {v}" for k, v in summary.items()]
    lines += ["", "![e2e](e2e_p50_ms.png) ![ttft](ttft_p50_ms.png) ![qps](qps.png) ![tokens](tokens_per_s.png)"]
    (out / "report.md").write_text("\n".join(lines) + "\n")
