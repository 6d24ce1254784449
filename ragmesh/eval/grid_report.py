"""What ``ragmesh eval --grid`` writes: grid.json (every cell, every metric's mean and paired
comparison with the baseline, each query's values), grid.md (a table per headline metric) and
heatmap.png (a panel per headline metric: rows the combinations of every axis but the last,
columns the last axis; each square the cell's mean, its difference with the baseline and a star
when the Holm-adjusted Wilcoxon p is below 0.05)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ragmesh.eval.grid import Axis, Cell
from ragmesh.eval.grid_chart import heatmap
from ragmesh.eval.paired import Paired, adjust, compare
from ragmesh.eval.runner import VariantResult

#: Per-query scores of the answer sample that can be compared pair by pair (and what the
#: prompt cost: a context budget is judged on both).
ANSWER_SCORES = ("token_f1", "exact_match", "containment", "grounded", "cites", "prompt_tokens")


@dataclass(frozen=True)
class CellResult:
    """A cell and what its run measured."""

    cell: Cell
    result: VariantResult


def per_query(result: VariantResult, metric: str) -> dict[str, float]:
    """Query id -> the metric's value: IR metrics from every query, answer scores (and the
    judge's criteria, ``judge_accuracy`` ...) from the answered sample."""
    if metric in ANSWER_SCORES or metric.startswith("judge_"):
        values = {}
        for row in result.answers:
            scores = row.get("judge", {}).get("scores", {}) if metric.startswith("judge_") else row
            key = metric.removeprefix("judge_") if metric.startswith("judge_") else metric
            if "error" not in row and key in scores:
                values[row["query_id"]] = float(scores[key])
        return values
    return {row["query_id"]: float(row[metric]) for row in result.per_query if metric in row}


def compared_metrics(results: Sequence[CellResult]) -> list[str]:
    """IR metrics of the runs, then the answer scores present in every cell."""
    first = results[0].result
    names = list(first.metrics)
    for name in (*ANSWER_SCORES, "judge_accuracy", "judge_relevance", "judge_completeness"):
        if all(per_query(r.result, name) for r in results):
            names.append(name)
    return names


def comparisons(results: Sequence[CellResult], metrics: Sequence[str], seed: int) -> dict[str, list[Paired]]:
    """Metric -> each cell against the first (the first compared with itself), Holm-adjusted
    across the other cells."""
    table: dict[str, list[Paired]] = {}
    for metric in metrics:
        baseline = per_query(results[0].result, metric)
        found = [compare(baseline, per_query(r.result, metric), seed) for r in results]
        table[metric] = [found[0], *adjust(found[1:])]
    return table


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def build(
    results: Sequence[CellResult],
    axes: Sequence[Axis],
    headline: Sequence[str],
    settings: Mapping[str, Any],
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """grid.json's content."""
    metrics = compared_metrics(results)
    table = comparisons(results, metrics, int(settings.get("seed", 0)))
    cells = []
    for index, item in enumerate(results):
        cells.append(
            {
                "label": item.cell.label,
                "settings": item.cell.settings,
                "collection": item.cell.collection,
                "chunking": list(item.cell.chunking),
                "metrics": item.result.metrics,
                "answer_metrics": item.result.answer_metrics,
                "errors": item.result.errors,
                # Why answers failed (the first few), so a cell's missing answers can be told apart.
                "answer_errors": [r["error"] for r in item.result.answers if "error" in r][:5],
                "wall_seconds": item.result.wall_seconds,
                "paired": {metric: asdict(table[metric][index]) for metric in metrics},
                "per_query": {metric: per_query(item.result, metric) for metric in metrics},
            }
        )
    report = {
        "axes": {axis.name: list(axis.values) for axis in axes},
        "baseline": results[0].cell.label,
        "headline": list(headline),
        "settings": dict(settings),
        **extra,
        "cells": cells,
    }
    return dict(_clean(report))


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "<0.0001" if value < 0.0001 else f"{value:.4f}"


def rows(report: Mapping[str, Any], metric: str) -> list[list[str]]:
    """A table row per cell: label, mean, Δ, CI of Δ, t p (Holm), Wilcoxon p (Holm), n."""
    found = []
    for index, cell in enumerate(report["cells"]):
        paired = cell["paired"][metric]
        mean = "–" if paired["mean"] is None else f"{paired['mean']:.4f}"
        if index == 0:
            found.append([cell["label"] + " (baseline)", mean, "", "", "", "", str(paired["n"])])
            continue
        low, high = paired["ci_low"], paired["ci_high"]
        interval = "–" if low is None or high is None else f"[{low:+.4f}, {high:+.4f}]"
        found.append(
            [
                cell["label"],
                mean,
                "–" if paired["mean_difference"] is None else f"{paired['mean_difference']:+.4f}",
                interval,
                f"{_p(paired['t_p'])} ({_p(paired['t_p_holm'])})",
                f"{_p(paired['wilcoxon_p'])} ({_p(paired['wilcoxon_p_holm'])})",
                f"{paired['n']} ({paired['n_nonzero']} differ)",
            ]
        )
    return found


HEADERS = ["cell", "mean", "Δ vs baseline", "95% CI of Δ", "paired t p (Holm)", "Wilcoxon p (Holm)", "queries"]


def markdown(report: Mapping[str, Any]) -> str:
    """grid.md: the run's settings, then one table per headline metric, then the heat map."""
    lines = [f"# Grid evaluation of {report['dataset']}", ""]
    lines += [f"- {name}: {', '.join(map(str, values))}" for name, values in report["axes"].items()]
    lines += [f"- baseline (every cell is compared with it, query by query): `{report['baseline']}`"]
    lines += [f"- {key}: {value}" for key, value in report["settings"].items()]
    lines += [
        f"- queries: {report['queries']}, documents: {report['documents']}, wall time: {report['wall_seconds']} s"
    ]
    for metric in report["headline"]:
        lines += ["", f"## {metric}", "", "| " + " | ".join(HEADERS) + " |", "|---|" + "---:|" * (len(HEADERS) - 1)]
        lines += ["| " + " | ".join(row) + " |" for row in rows(report, metric)]
    lines += [
        "",
        "Every metric of every cell, with each query's values: grid.json.",
        "",
        "![heat map](heatmap.png)",
        "",
    ]
    return "\n".join(lines)


def write(report: Mapping[str, Any], out: Path) -> None:
    """grid.json, grid.md and heatmap.png in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "grid.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "grid.md").write_text(markdown(report), encoding="utf-8")
    heatmap(report, out / "heatmap.png")
