"""The experiments of one orchestrator process, in one object the pipeline and the
transports call: assign a query, record it when it ends, take feedback, build reports.

Recording never fails or delays a query: :meth:`Experiments.record_soon` updates the
metrics at once and writes the record in a background task (bounded in number), so it can
be called from a ``finally`` block even when the query was cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ragmesh.vocabulary import CacheLevel
from ragmesh.vocabulary.experiments.model import Experiment, ExperimentsConfig
from services.common.errors import NotFound
from services.common.principal import Principal
from services.orchestrator.core.experiments.analysis import ExperimentReport, build_report, check_metric, metric_values
from services.orchestrator.core.experiments.assignment import Assignment, assign
from services.orchestrator.core.experiments.chart import render_chart
from services.orchestrator.core.experiments.metrics import ExperimentMetrics
from services.orchestrator.core.experiments.records import QueryRecord, RecordStore

log = logging.getLogger(__name__)
#: Record writes in flight at most; beyond it a record is dropped (and counted), not queued.
MAX_PENDING_WRITES = 1000


@dataclass(frozen=True)
class QueryOutcome:
    """What the pipeline measured for one query (the record minus the assignment)."""

    trace_id: str
    latency_ms: float
    ttft_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_level: CacheLevel = CacheLevel.NONE
    #: gRPC status code name, "" for OK.
    error_code: str = ""


class Experiments:
    """Assignment, recording, feedback and reports over one config and one record store."""

    def __init__(self, config: ExperimentsConfig, store: RecordStore) -> None:
        self.config = config
        self.store = store
        self.metrics = ExperimentMetrics(config)
        self.dropped = 0
        self._pending: set[asyncio.Task[None]] = set()

    def assign(self, collection: str, caller_id: str, trace_id: str, requested: str = "") -> Assignment | None:
        """See :func:`assignment.assign` (InvalidArgument for an unknown forced variant)."""
        return assign(self.config, collection, caller_id, trace_id, requested)

    def record_soon(self, assignment: Assignment, outcome: QueryOutcome) -> None:
        """Count the query in the metrics now and store its record in the background."""
        record = QueryRecord(
            experiment=assignment.experiment,
            variant=assignment.variant,
            trace_id=outcome.trace_id,
            timestamp=time.time(),
            latency_ms=outcome.latency_ms,
            ttft_ms=outcome.ttft_ms,
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            cache_level=outcome.cache_level,
            error_code=outcome.error_code,
            forced=assignment.basis == "forced",
        )
        self.metrics.observe_query(record)
        if len(self._pending) >= MAX_PENDING_WRITES:
            self.dropped += 1
            return
        task = asyncio.get_running_loop().create_task(self._write(record))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write(self, record: QueryRecord) -> None:
        try:
            await self.store.record_query(record)
        except Exception:  # a failed background write is logged, never raised into the loop
            self.dropped += 1
            log.exception("experiment record for trace %s was not stored", record.trace_id or "-")

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until the background writes are done: at shutdown and in tests."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)

    async def record_feedback(self, trace_id: str, rating: float, labels: Mapping[str, int]) -> tuple[str, str]:
        """Join feedback to a recorded query; returns its (experiment, variant)."""
        experiment, variant = await self.store.record_feedback(trace_id, rating, labels)
        self.metrics.observe_rating(experiment, variant, rating)
        return experiment, variant

    def readable(self, principal: Principal) -> list[str]:
        """The declared experiments ``principal`` may read every collection of."""
        return [e.name for e in self.config.experiments if all(principal.may(c) for c in e.collections)]

    def experiment(self, name: str) -> Experiment:
        """The declared experiment ``name``; NotFound naming the declared ones otherwise."""
        experiment = self.config.get(name)
        if experiment is None:
            known = ", ".join(e.name for e in self.config.experiments) or "none are configured"
            raise NotFound(f"no experiment {name[:64]!r} (declared: {known})")
        return experiment

    async def report(
        self,
        name: str,
        metric: str = "latency_ms",
        *,
        exclude_cache_hits: bool = False,
        include_forced: bool = False,
        chart: bool = False,
    ) -> tuple[ExperimentReport, bytes | None]:
        """The report of ``metric`` for experiment ``name`` and, when ``chart``, its PNG (the
        statistics and the drawing run in a worker thread: they take tens of milliseconds).
        InvalidArgument for an unknown metric, NotFound for an unknown experiment."""
        experiment = self.experiment(name)
        check_metric(metric)  # before Redis is read
        records = await self.store.read(name)
        variants = experiment.variant_names
        options = {"exclude_cache_hits": exclude_cache_hits, "include_forced": include_forced}

        def build() -> tuple[ExperimentReport, bytes | None]:
            report = build_report(name, variants, records, metric, **options)
            if not chart:
                return report, None
            return report, render_chart(report, metric_values(records, metric, variants, **options))

        return await asyncio.to_thread(build)
