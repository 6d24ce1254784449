"""Paired comparison of two settings on the same queries (``ragmesh eval --grid``).

Every cell of a grid answers the same queries, so the right question is about the
per-query differences d_i = cell_i - baseline_i, not about two independent samples:
- the paired t-test (``scipy.stats.ttest_rel``): is the mean difference zero?
- the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``): the same question without assuming
  normal differences — IR metrics are bounded, often 0 or 1, and rarely normal. Queries whose
  difference is exactly zero carry no sign: Wilcox's method drops them (``n_nonzero`` says how
  many are left);
- a bootstrap 95% confidence interval of the mean difference (``scipy.stats.bootstrap``, BCa,
  seeded: a rerun gives the same interval);
- Holm's step-down adjustment of each test's p-values across the cells of one metric, since a
  grid compares several cells with the baseline at once.

scipy is imported where it is used: ``ragmesh`` starts for every command, most need no statistics.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 9999
#: The level reports mark a difference at (on Holm-adjusted p-values).
ALPHA = 0.05


@dataclass(frozen=True)
class Paired:
    """One cell against the baseline on one metric (None where a figure is undefined)."""

    n: int
    mean: float
    baseline_mean: float
    mean_difference: float
    ci_low: float | None
    ci_high: float | None
    t_statistic: float | None
    t_p: float | None
    wilcoxon_statistic: float | None
    wilcoxon_p: float | None
    n_nonzero: int
    t_p_holm: float | None = None
    wilcoxon_p_holm: float | None = None


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _bootstrap(differences: np.ndarray, seed: int) -> tuple[float | None, float | None]:
    from scipy import stats

    if len(differences) < 2:
        return None, None
    if np.all(differences == differences[0]):  # no spread: every resample has this mean
        return float(differences[0]), float(differences[0])
    result = stats.bootstrap(
        (differences,),
        np.mean,
        confidence_level=CONFIDENCE,
        n_resamples=RESAMPLES,
        method="BCa",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return _finite(low), _finite(high)


def compare(baseline: Mapping[str, float], cell: Mapping[str, float], seed: int = 0) -> Paired:
    """The paired comparison over the queries both have a value for."""
    from scipy import stats

    queries = sorted(set(baseline) & set(cell))
    base = np.array([baseline[q] for q in queries], dtype=float)
    other = np.array([cell[q] for q in queries], dtype=float)
    differences = other - base
    nonzero = int(np.count_nonzero(differences))
    t_statistic = t_p = w_statistic = w_p = None
    if len(queries) >= 2 and nonzero:
        with warnings.catch_warnings():  # constant differences: t is infinite, said by t_statistic None
            warnings.simplefilter("ignore", RuntimeWarning)
            t = stats.ttest_rel(other, base)
        t_statistic, t_p = _finite(t.statistic), _finite(t.pvalue)
        w = stats.wilcoxon(differences, zero_method="wilcox")
        w_statistic, w_p = _finite(float(w.statistic)), _finite(float(w.pvalue))
    elif len(queries) >= 2:  # identical on every query: no evidence of any difference
        t_p = w_p = 1.0
    low, high = _bootstrap(differences, seed)
    mean = float(np.mean(other)) if queries else math.nan
    base_mean = float(np.mean(base)) if queries else math.nan
    return Paired(
        len(queries), mean, base_mean, mean - base_mean, low, high, t_statistic, t_p, w_statistic, w_p, nonzero
    )


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None stays None and does not count)."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(present):
        running = max(running, min(1.0, (len(present) - rank) * p))
        adjusted[index] = running
    return adjusted


def adjust(comparisons: Sequence[Paired]) -> list[Paired]:
    """The comparisons of one metric with Holm-adjusted p-values of both tests."""
    t_holm = holm([c.t_p for c in comparisons])
    w_holm = holm([c.wilcoxon_p for c in comparisons])
    return [replace(c, t_p_holm=t, wilcoxon_p_holm=w) for c, t, w in zip(comparisons, t_holm, w_holm, strict=True)]
