"""A PNG of one experiment report: each variant's distribution of the metric as a box plot
(median, quartiles, whiskers at 1.5 IQR, outliers), with its mean and 95% confidence
interval drawn beside the box, and the p-value against the control under each label.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global state, no display),
so it is safe to call from a worker thread of the server.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

from services.orchestrator.core.experiments.analysis import ExperimentReport

WIDTH_INCHES = 2.0
HEIGHT_INCHES = 4.5
DPI = 100


def _label(report: ExperimentReport, index: int) -> str:
    summary = report.variants[index]
    label = f"{summary.variant}\nn={summary.count}"
    if index == 0:
        return label + "\n(control)"
    comparison = report.comparisons[index - 1]
    if comparison.welch_p is not None:
        label += f"\nWelch p={comparison.welch_p:.3g}"
    if comparison.mann_whitney_p is not None:
        label += f"\nMWU p={comparison.mann_whitney_p:.3g}"
    return label


def render_chart(report: ExperimentReport, values: Mapping[str, Sequence[float]]) -> bytes:
    """The chart as PNG bytes; ``values`` are the metric's values per variant (as given to the
    report, see :func:`analysis.metric_values`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [s.variant for s in report.variants]
    figure = Figure(figsize=(max(4.0, WIDTH_INCHES * len(names) + 1.5), HEIGHT_INCHES), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(1, len(names) + 1))
    # An empty variant still gets its slot, so the labels stay in declaration order.
    data = [list(values.get(name, [])) or [float("nan")] for name in names]
    axes.boxplot(data, positions=positions, widths=0.45, showfliers=True)
    for position, summary in zip(positions, report.variants, strict=True):
        if summary.mean is None:
            continue
        low = summary.mean - summary.ci_low if summary.ci_low is not None else 0.0
        high = summary.ci_high - summary.mean if summary.ci_high is not None else 0.0
        axes.errorbar(position + 0.32, summary.mean, yerr=[[low], [high]], fmt="o", color="tab:red", capsize=4)
    axes.set_xticks(positions, [_label(report, i) for i in range(len(names))], fontsize=8)
    axes.set_ylabel(report.metric)
    axes.set_title(f"{report.experiment}: {report.metric} (red: mean, 95% CI)", fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
