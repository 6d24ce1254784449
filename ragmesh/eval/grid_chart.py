"""heatmap.png of ``ragmesh eval --grid``: one panel per headline metric, rows the combinations
of every axis but the last, columns the last axis's values, each square the cell's mean with
its difference from the baseline (a star: Holm-adjusted Wilcoxon p < 0.05)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ragmesh.eval.paired import ALPHA


def _labels(axes: Mapping[str, list[Any]]) -> tuple[list[str], list[str], str]:
    names = list(axes)
    columns = [str(v) for v in axes[names[-1]]]
    rows = [
        " ".join(f"{name}={value}" for name, value in zip(names[:-1], combo, strict=True))
        for combo in itertools.product(*(axes[name] for name in names[:-1]))
    ]
    return rows or [""], columns, names[-1]


def _note(index: int, paired: Mapping[str, Any]) -> str:
    mean = paired["mean"]
    if mean is None:
        return "–"
    if index == 0:
        return f"{mean:.3f}\nbaseline"
    difference, p = paired["mean_difference"], paired["wilcoxon_p_holm"]
    star = "*" if p is not None and p < ALPHA else ""
    return f"{mean:.3f}\n{difference:+.3f}{star}"


def heatmap(report: Mapping[str, Any], path: Path) -> None:
    """Draw the report's headline metrics into ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    import numpy as np

    rows, columns, column_axis = _labels(report["axes"])
    metrics = list(report["headline"])
    width = max(4.0, 1.3 * len(columns) + 2.2)
    figure, panels = plt.subplots(1, len(metrics), figsize=(width * len(metrics), 1.0 + 0.9 * len(rows)), squeeze=False)
    for panel, metric in zip(panels[0], metrics, strict=True):
        means = [cell["paired"][metric]["mean"] for cell in report["cells"]]
        grid = np.array([np.nan if m is None else m for m in means], dtype=float).reshape(len(rows), len(columns))
        image = panel.imshow(grid, cmap="viridis", aspect="auto")
        for index, cell in enumerate(report["cells"]):
            row, column = divmod(index, len(columns))
            value = grid[row, column]
            light = not np.isnan(value) and value < np.nanmean(grid)
            panel.text(column, row, _note(index, cell["paired"][metric]), ha="center", va="center",
                       fontsize=8, color="white" if light else "black")  # fmt: skip
        panel.set_xticks(range(len(columns)), columns)
        panel.set_xlabel(column_axis)
        panel.set_yticks(range(len(rows)), rows, fontsize=8)
        panel.set_title(metric)
        figure.colorbar(image, ax=panel, fraction=0.046, pad=0.04)
    figure.suptitle(f"{report['dataset']}: mean, Δ vs baseline (* Holm-adjusted Wilcoxon p < {ALPHA})", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
