"""Evaluation reports: report.json (aggregate metrics at the top level), report.md and a
PNG chart of the metrics per run or variant side by side."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ragmesh.eval.runner import VariantResult

#: Metric families in chart order (each at the cutoffs the runs report, @1 left out).
CHART_FAMILIES = ("ndcg", "recall", "precision", "f1", "mrr", "map", "hit_rate")


def build(results: Sequence[VariantResult], settings: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """The report: the first variant's metrics at the top level, every variant under
    ``variants``, settings, collection size and wall time."""
    first = results[0]
    report: dict[str, Any] = dict(first.metrics)
    report |= {f"answers_{name}": value for name, value in first.answer_metrics.items()}
    report["settings"] = dict(settings)
    report |= dict(extra)
    report["variants"] = {
        r.variant: {
            "metrics": r.metrics,
            "answer_metrics": r.answer_metrics,
            "errors": r.errors,
            "wall_seconds": r.wall_seconds,
            "per_query": r.per_query,
            "answers": r.answers,
        }
        for r in results
    }
    report["per_query"] = first.per_query
    return report


def series(report: Mapping[str, Any], label: str) -> dict[str, dict[str, float]]:
    """Label -> metrics of each variant in a report (the label alone when there is one)."""
    variants = report.get("variants") or {"default": {"metrics": _top_metrics(report)}}
    if len(variants) == 1:
        return {label: next(iter(variants.values()))["metrics"]}
    return {f"{label}:{name}": body["metrics"] for name, body in variants.items()}


def _top_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in report.items() if "@" in k and isinstance(v, int | float)}


def chart(runs: Mapping[str, Mapping[str, float]], path: Path, title: str) -> None:
    """Grouped bars: one group per metric, one bar per run or variant."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    present = {name for metrics in runs.values() for name in metrics if "@" in name and not name.endswith("@1")}
    names = sorted(present, key=lambda n: (CHART_FAMILIES.index(n.split("@")[0]), int(n.split("@")[1])))
    width = 0.8 / max(len(runs), 1)
    figure, axes = plt.subplots(figsize=(max(6.0, 1.1 * len(names) * max(1, len(runs)) ** 0.5), 4.0))
    for index, (label, metrics) in enumerate(runs.items()):
        positions = [i + index * width for i in range(len(names))]
        axes.bar(positions, [metrics.get(n, 0.0) for n in names], width, label=label)
    axes.set_xticks([i + width * (len(runs) - 1) / 2 for i in range(len(names))], names, rotation=20)
    axes.set_ylim(0, 1.05)
    axes.set_title(title)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown(report: Mapping[str, Any]) -> str:
    """report.md: settings, one metrics table with a column per variant, answer scores."""
    variants = report["variants"]
    lines = [f"# Evaluation of {report['dataset']}", ""]
    lines += [f"- {key}: {value}" for key, value in report["settings"].items()]
    lines += [
        f"- collection chunks: {report['collection_chunks']}, documents: {report['documents']}",
        f"- queries: {report['queries']}, wall time: {report['wall_seconds']} s",
        "",
    ]
    lines += table(variants, "metrics")
    if any(body["answer_metrics"] for body in variants.values()):
        lines += ["", "## Answers", "", *table(variants, "answer_metrics")]
    lines += ["", "![metrics](chart.png)", ""]
    return "\n".join(lines)


def table(variants: Mapping[str, Mapping[str, Any]], key: str) -> list[str]:
    """A Markdown table: a row per metric, a column per variant."""
    names = list(dict.fromkeys(name for body in variants.values() for name in body[key]))
    lines = ["| metric | " + " | ".join(variants) + " |", "|---|" + "---:|" * len(variants)]
    for name in names:
        cells = [_cell(body[key].get(name)) for body in variants.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _cell(value: Any) -> str:
    return "" if value is None else f"{value:.4f}"


def write(report: Mapping[str, Any], out: Path) -> None:
    """report.json, report.md and chart.png in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown(report), encoding="utf-8")
    chart(series(report, str(report["dataset"])), out / "chart.png", f"{report['dataset']} ({report['collection']})")


def read(folder: Path) -> dict[str, Any]:
    """The report.json of a run folder."""
    path = folder / "report.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no report.json (is {folder} an evaluation's --out folder?)")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not an evaluation report")
    return data


def compare(folders: Sequence[Path], out: Path) -> dict[str, dict[str, float]]:
    """Chart several runs side by side into ``out``; returns the charted series."""
    runs: dict[str, dict[str, float]] = {}
    for index, folder in enumerate(folders, start=1):
        label = folder.name if not any(k.split(":")[0] == folder.name for k in runs) else f"{folder.name}#{index}"
        runs |= series(read(folder), label)
    out.parent.mkdir(parents=True, exist_ok=True)
    chart(runs, out, "comparison")
    return runs
