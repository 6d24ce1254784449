"""Prometheus metrics of experiments, labelled by experiment and variant.

Label values come from the experiments file only: :class:`ExperimentMetrics` creates the
series of every configured (experiment, variant) pair up front and refuses any other pair
(counted, unlabelled, in ``ragmesh_experiment_unknown_label_total``), so no request can
add a series. At most 32 experiments x 16 variants exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram

from ragmesh.vocabulary import CacheLevel
from ragmesh.vocabulary.experiments.model import ExperimentsConfig
from services.common.metrics import LATENCY_BUCKETS
from services.orchestrator.core.experiments.records import QueryRecord

LABELS = ["experiment", "variant"]
QUERIES = Counter(
    "ragmesh_experiment_queries_total", "Queries run under an experiment variant, by outcome", [*LABELS, "outcome"]
)
LATENCY = Histogram(
    "ragmesh_experiment_latency_seconds", "Query time under an experiment variant", LABELS, buckets=LATENCY_BUCKETS
)
FIRST_TOKEN = Histogram(
    "ragmesh_experiment_time_to_first_token_seconds",
    "Arrival to first answer token under an experiment variant",
    LABELS,
    buckets=LATENCY_BUCKETS,
)
TOKENS = Counter("ragmesh_experiment_tokens_total", "Generator tokens under an experiment variant", [*LABELS, "type"])
CACHE_HITS = Counter("ragmesh_experiment_cache_hits_total", "Answers served from cache, by level", [*LABELS, "level"])
RATINGS = Histogram(
    "ragmesh_experiment_rating", "Feedback ratings (1-5)", LABELS, buckets=(1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0)
)
UNKNOWN = Counter("ragmesh_experiment_unknown_label_total", "Observations refused: experiment/variant not configured")
OUTCOMES = ("ok", "error")
TOKEN_TYPES = ("prompt", "completion")


@dataclass
class _Series:
    """The labelled children of one (experiment, variant), looked up once."""

    queries: dict[str, Any]
    latency: Any
    first_token: Any
    tokens: dict[str, Any]
    cache_hits: dict[str, Any]
    ratings: Any


class ExperimentMetrics:
    """Updates the experiment metrics for configured (experiment, variant) pairs only."""

    def __init__(self, config: ExperimentsConfig) -> None:
        self._series = {pair: _series(*pair) for pair in config.labels()}

    def _lookup(self, experiment: str, variant: str) -> _Series | None:
        series = self._series.get((experiment, variant))
        if series is None:
            UNKNOWN.inc()
        return series

    def observe_query(self, record: QueryRecord) -> bool:
        """Count one query; False (and nothing labelled) for an unconfigured pair."""
        series = self._lookup(record.experiment, record.variant)
        if series is None:
            return False
        series.queries["ok" if record.ok else "error"].inc()
        series.latency.observe(record.latency_ms / 1000.0)
        if record.ttft_ms is not None:
            series.first_token.observe(record.ttft_ms / 1000.0)
        series.tokens["prompt"].inc(record.prompt_tokens)
        series.tokens["completion"].inc(record.completion_tokens)
        if record.cache_level in series.cache_hits:
            series.cache_hits[record.cache_level].inc()
        return True

    def observe_rating(self, experiment: str, variant: str, rating: float) -> bool:
        """Observe one feedback rating; False for an unconfigured pair."""
        series = self._lookup(experiment, variant)
        if series is None:
            return False
        series.ratings.observe(rating)
        return True


def _series(experiment: str, variant: str) -> _Series:
    return _Series(
        queries={o: QUERIES.labels(experiment, variant, o) for o in OUTCOMES},
        latency=LATENCY.labels(experiment, variant),
        first_token=FIRST_TOKEN.labels(experiment, variant),
        tokens={t: TOKENS.labels(experiment, variant, t) for t in TOKEN_TYPES},
        cache_hits={level: CACHE_HITS.labels(experiment, variant, level) for level in (CacheLevel.L1, CacheLevel.L2)},
        ratings=RATINGS.labels(experiment, variant),
    )
