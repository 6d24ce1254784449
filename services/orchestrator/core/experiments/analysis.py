"""Statistics of an experiment: a summary per variant and each variant against the control.

Per variant: count, mean, standard deviation, min, max, p50, p95 and a 95% confidence
interval of the mean (Student's t). Against the control (the first variant): Welch's t-test
(unequal variances) and the Mann-Whitney U test (no normality assumed; latencies are
skewed), two-sided, via scipy; Cohen's d and Hedges' g; and the sample size per variant a
two-sided two-sample t-test needs to detect the observed effect with the given power,
computed exactly from the noncentral t distribution (scipy.stats.nct), not statsmodels.

scipy.stats is imported inside the functions that use it: at the top it cost every
orchestrator and worker start a second (of 3.5 s of imports), for reports few replicas make.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from services.common.errors import InvalidArgument
from services.orchestrator.core.experiments.records import QueryRecord

#: The largest sample size per variant worth reporting; a smaller effect reports None.
MAX_SAMPLE_SIZE = 10_000_000


def _ok(record: QueryRecord) -> bool:
    return record.ok


#: metric -> (which records count, the value of one record)
METRICS: dict[str, tuple[Callable[[QueryRecord], bool], Callable[[QueryRecord], float]]] = {
    "latency_ms": (_ok, lambda r: r.latency_ms),
    "ttft_ms": (lambda r: r.ok and r.ttft_ms is not None, lambda r: float(r.ttft_ms or 0.0)),
    # Cached answers carry no token usage, so they would only dilute the token counts.
    "completion_tokens": (lambda r: r.ok and not r.cache_hit, lambda r: float(r.completion_tokens)),
    "prompt_tokens": (lambda r: r.ok and not r.cache_hit, lambda r: float(r.prompt_tokens)),
    "rating": (lambda r: r.feedback is not None, lambda r: r.feedback.rating if r.feedback else 0.0),
    "error_rate": (lambda _r: True, lambda r: 0.0 if r.ok else 1.0),
    "cache_hit_rate": (_ok, lambda r: 1.0 if r.cache_hit else 0.0),
}


@dataclass(frozen=True)
class VariantSummary:
    """Descriptive statistics of one variant's values (None where undefined: too few values)."""

    variant: str
    count: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    p50: float | None
    p95: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class Comparison:
    """One variant against the control."""

    variant: str
    control: str
    #: variant mean - control mean, and that relative to the control mean.
    difference: float | None
    relative_difference: float | None
    welch_t: float | None
    welch_p: float | None
    mann_whitney_u: float | None
    mann_whitney_p: float | None
    cohens_d: float | None
    hedges_g: float | None
    #: Per-variant sample size for the configured power at alpha (None: no effect to detect).
    required_per_variant: int | None
    #: How many more values the smaller of the two groups still needs (0 when enough).
    still_needed: int | None
    #: Welch's p-value is below alpha.
    significant: bool


@dataclass(frozen=True)
class ExperimentReport:
    """Summaries and comparisons of one metric of one experiment."""

    experiment: str
    metric: str
    records: int
    alpha: float
    power: float
    variants: list[VariantSummary]
    comparisons: list[Comparison]


def check_metric(metric: str) -> None:
    """InvalidArgument naming the known metrics unless ``metric`` is one."""
    if metric not in METRICS:
        raise InvalidArgument(f"unknown metric {metric[:64]!r}; use one of {', '.join(METRICS)}")


def metric_values(
    records: Sequence[QueryRecord],
    metric: str,
    variants: Sequence[str],
    *,
    exclude_cache_hits: bool = False,
    include_forced: bool = False,
) -> dict[str, list[float]]:
    """The values of ``metric`` per variant (every name in ``variants``, possibly empty).
    Queries whose caller forced the variant (offline evaluation, debugging) were not
    randomised, so they are left out unless ``include_forced``."""
    check_metric(metric)
    counts, value = METRICS[metric]
    values: dict[str, list[float]] = {name: [] for name in variants}
    for record in records:
        if record.forced and not include_forced:
            continue
        if record.variant in values and counts(record) and not (exclude_cache_hits and record.cache_hit):
            values[record.variant].append(value(record))
    return values


def summarize(variant: str, values: Sequence[float], confidence: float = 0.95) -> VariantSummary:
    """Descriptive statistics and the t confidence interval of the mean."""
    data = np.asarray(values, dtype=np.float64)
    n = int(data.size)
    if n == 0:
        return VariantSummary(variant, 0, None, None, None, None, None, None, None, None)
    mean = float(data.mean())
    std = float(data.std(ddof=1)) if n > 1 else None
    ci_low = ci_high = None
    if std is not None:
        from scipy import stats  # imported where used, see the module docstring

        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
        ci_low, ci_high = mean - half, mean + half
    p50, p95 = (float(x) for x in np.percentile(data, [50, 95]))
    return VariantSummary(variant, n, mean, std, float(data.min()), float(data.max()), p50, p95, ci_low, ci_high)


def cohens_d(control: Sequence[float], variant: Sequence[float]) -> float | None:
    """(variant mean - control mean) / pooled standard deviation; None when undefined."""
    a, b = np.asarray(control, dtype=np.float64), np.asarray(variant, dtype=np.float64)
    if a.size < 2 or b.size < 2:
        return None
    pooled = ((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2)
    if pooled <= 0:
        return None
    return float((b.mean() - a.mean()) / math.sqrt(pooled))


def hedges_g(d: float, n1: int, n2: int) -> float:
    """Cohen's d corrected for its small-sample bias."""
    return d * (1.0 - 3.0 / (4.0 * (n1 + n2) - 9.0))


def t_test_power(d: float, n: int, alpha: float) -> float:
    """Power of a two-sided two-sample t-test with ``n`` per group at effect size ``d``."""
    from scipy import stats

    df = 2 * n - 2
    noncentrality = abs(d) * math.sqrt(n / 2.0)
    critical = float(stats.t.ppf(1 - alpha / 2, df))
    return float(stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality))


def required_sample_size(d: float | None, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """The smallest n per group whose t-test power reaches ``power`` (None: no effect, or
    more than :data:`MAX_SAMPLE_SIZE`). Starts from the normal approximation
    2((z_a + z_b)/d)^2, which is within a few of the exact answer, and steps from there."""
    if d is None or not math.isfinite(d) or d == 0:
        return None
    from scipy import stats

    z = float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    n = max(2, math.ceil(2 * (z / abs(d)) ** 2))
    if n > MAX_SAMPLE_SIZE:
        return None
    for _ in range(100):  # the approximation is low by one or two: a bounded walk up
        if t_test_power(d, n, alpha) >= power:
            break
        n += 1
    while n > 2 and t_test_power(d, n - 1, alpha) >= power:
        n -= 1
    return n


def compare(
    control: str, control_values: Sequence[float], variant: str, values: Sequence[float], *, alpha: float, power: float
) -> Comparison:
    """Welch's t-test, Mann-Whitney U, effect sizes and sample size for one variant."""
    from scipy import stats

    a, b = np.asarray(control_values, dtype=np.float64), np.asarray(values, dtype=np.float64)
    difference = relative = welch_t = welch_p = u = u_p = None
    if a.size and b.size:
        difference = float(b.mean() - a.mean())
        relative = difference / float(a.mean()) if a.mean() != 0 else None
        u_result = stats.mannwhitneyu(b, a, alternative="two-sided")
        u, u_p = float(u_result.statistic), float(u_result.pvalue)
    if a.size >= 2 and b.size >= 2 and (a.var() > 0 or b.var() > 0):
        t_result = stats.ttest_ind(b, a, equal_var=False)
        welch_t, welch_p = float(t_result.statistic), float(t_result.pvalue)
    d = cohens_d(a.tolist(), b.tolist())
    g = hedges_g(d, int(a.size), int(b.size)) if d is not None else None
    needed = required_sample_size(d, alpha, power)
    still = max(0, needed - int(min(a.size, b.size))) if needed is not None else None
    significant = welch_p is not None and welch_p < alpha
    return Comparison(
        variant, control, difference, relative, welch_t, welch_p, u, u_p, d, g, needed, still, significant
    )


def build_report(
    experiment: str,
    variants: Sequence[str],
    records: Sequence[QueryRecord],
    metric: str = "latency_ms",
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    exclude_cache_hits: bool = False,
    include_forced: bool = False,
) -> ExperimentReport:
    """The report of ``metric``; ``variants`` in declaration order, the first is the control."""
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise InvalidArgument(f"alpha and power must be between 0 and 1, got {alpha} and {power}")
    values = metric_values(
        records, metric, variants, exclude_cache_hits=exclude_cache_hits, include_forced=include_forced
    )
    summaries = [summarize(name, values[name]) for name in variants]
    control = variants[0]
    comparisons = [
        compare(control, values[control], name, values[name], alpha=alpha, power=power) for name in variants[1:]
    ]
    return ExperimentReport(experiment, metric, len(records), alpha, power, summaries, comparisons)
