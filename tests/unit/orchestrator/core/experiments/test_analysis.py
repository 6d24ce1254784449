"""The analysis: hand-checked statistics, a real latency difference told apart, identical
distributions not (in most seeded runs), the textbook sample size, and metric selection."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ragmesh.vocabulary import CacheLevel
from services.common.errors import InvalidArgument
from services.orchestrator.core.experiments.analysis import (
    build_report,
    cohens_d,
    hedges_g,
    metric_values,
    required_sample_size,
    summarize,
    t_test_power,
)
from services.orchestrator.core.experiments.records import Feedback, QueryRecord


def _records(variant: str, latencies: np.ndarray, **fields: object) -> list[QueryRecord]:
    return [
        QueryRecord("exp", variant, f"{variant}{i:030x}", 0.0, float(ms), **fields)  # type: ignore[arg-type]
        for i, ms in enumerate(latencies)
    ]


def test_summary_matches_hand_computed_values() -> None:
    summary = summarize("a", [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert summary.count == 8 and summary.mean == 5.0 and summary.min == 2.0 and summary.max == 9.0
    assert summary.std == pytest.approx(math.sqrt(32 / 7))  # sum of squared deviations 32, n - 1 = 7
    half = 2.364624251592785 * math.sqrt(32 / 7) / math.sqrt(8)  # t(0.975, 7)
    assert summary.ci_low == pytest.approx(5 - half) and summary.ci_high == pytest.approx(5 + half)
    assert summary.p50 == 4.5 and summary.p95 == pytest.approx(8.3)
    assert summarize("b", [3.0]).std is None and summarize("c", []).mean is None


def test_effect_sizes_and_the_textbook_sample_size() -> None:
    assert cohens_d([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]) == pytest.approx(1.0)  # pooled sd 1
    assert hedges_g(1.0, 3, 3) == pytest.approx(1 - 3 / 15)
    # Cohen's tables: d = 0.5, alpha 0.05, power 0.8 -> 64 per group; d = 0.8 -> 26.
    assert required_sample_size(0.5) == 64 and required_sample_size(-0.8) == 26
    assert t_test_power(0.5, 64, 0.05) >= 0.8 > t_test_power(0.5, 63, 0.05)
    assert required_sample_size(0.0) is None and required_sample_size(None) is None


def test_a_real_latency_difference_is_told_apart() -> None:
    rng = np.random.default_rng(7)
    control = rng.lognormal(math.log(100), 0.4, 150)
    slower = rng.lognormal(math.log(130), 0.4, 150)  # 30% slower, as top_k 50 + rerank vs top_k 1
    report = build_report("exp", ["control", "slow"], _records("control", control) + _records("slow", slower))
    comparison = report.comparisons[0]
    assert comparison.welch_p is not None and comparison.welch_p < 0.001
    assert comparison.mann_whitney_p is not None and comparison.mann_whitney_p < 0.001
    assert comparison.significant and comparison.difference is not None and comparison.difference > 0
    assert comparison.cohens_d is not None and comparison.cohens_d > 0.5
    assert comparison.still_needed == 0 and comparison.required_per_variant is not None
    assert comparison.welch_p == pytest.approx(stats.ttest_ind(slower, control, equal_var=False).pvalue)


def test_identical_distributions_are_not_told_apart_in_most_seeded_runs() -> None:
    alike = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        a, b = rng.lognormal(math.log(100), 0.4, 100), rng.lognormal(math.log(100), 0.4, 100)
        comparison = build_report("exp", ["a", "b"], _records("a", a) + _records("b", b)).comparisons[0]
        assert comparison.welch_p is not None and comparison.mann_whitney_p is not None
        alike += comparison.welch_p > 0.05 and comparison.mann_whitney_p > 0.05
    assert alike >= 16  # 5% false positives per test expected: about 18-19 of 20


def test_metrics_pick_their_records() -> None:
    records = [
        QueryRecord("exp", "a", "t1", 0.0, 10.0, ttft_ms=4.0, completion_tokens=7, feedback=Feedback(4.0)),
        QueryRecord("exp", "a", "t2", 0.0, 1.0, cache_level=CacheLevel.L1),
        QueryRecord("exp", "a", "t3", 0.0, 50.0, error_code="UNAVAILABLE"),
        QueryRecord("exp", "b", "t4", 0.0, 20.0, completion_tokens=9),
        QueryRecord("exp", "gone", "t5", 0.0, 20.0),  # a variant since removed from the file
        QueryRecord("exp", "b", "t6", 0.0, 99.0, forced=True),  # not randomised: left out by default
    ]
    variants = ["a", "b"]
    assert metric_values(records, "latency_ms", variants) == {"a": [10.0, 1.0], "b": [20.0]}
    assert metric_values(records, "latency_ms", variants, exclude_cache_hits=True)["a"] == [10.0]
    assert metric_values(records, "latency_ms", variants, include_forced=True)["b"] == [20.0, 99.0]
    assert metric_values(records, "ttft_ms", variants) == {"a": [4.0], "b": []}
    assert metric_values(records, "completion_tokens", variants) == {"a": [7.0], "b": [9.0]}
    assert metric_values(records, "error_rate", variants)["a"] == [0.0, 0.0, 1.0]
    assert metric_values(records, "cache_hit_rate", variants)["a"] == [0.0, 1.0]
    assert metric_values(records, "rating", variants) == {"a": [4.0], "b": []}
    with pytest.raises(InvalidArgument, match="unknown metric 'speed'; use one of latency_ms"):
        metric_values(records, "speed", variants)


def test_a_report_with_too_few_values_has_no_test_but_does_not_fail() -> None:
    records = [QueryRecord("exp", "a", "t1", 0.0, 10.0), QueryRecord("exp", "b", "t2", 0.0, 11.0)]
    report = build_report("exp", ["a", "b", "c"], records)
    assert [s.count for s in report.variants] == [1, 1, 0]
    assert report.comparisons[0].welch_p is None and report.comparisons[0].difference == 1.0
    assert report.comparisons[1].difference is None and not report.comparisons[1].significant
