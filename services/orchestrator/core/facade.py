"""The orchestrator's core facade: queries (with status metrics), ingestion, collections,
experiments, background jobs, stats and health — everything a transport (and the worker)
calls, in domain types only. It is built by :func:`services.orchestrator.wiring.build_core`.

Every call is made for the principal bound to the request (:func:`current_principal`):
the facade authorizes it and scopes what it reads, whatever transport the call came by.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import Counter

from services.common.errors import FailedPrecondition, status_of
from services.common.principal import Principal, authorize, bind_principal, current_principal, scope_key
from services.common.tracing import current_trace_id
from services.orchestrator.core.access import check_owner, owner_tag, writable
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Answer, ComponentHealth, Event, IngestProgress, QueryInput
from services.orchestrator.core.experiments.analysis import ExperimentReport
from services.orchestrator.core.experiments.manager import Experiments
from services.orchestrator.core.experiments.runs import apply_variant, recorded
from services.orchestrator.core.ingest.ingestor import Ingestor
from services.orchestrator.core.ingest.state import IngestBatch
from services.orchestrator.core.jobs.manager import NO_ENGINE, JobManager
from services.orchestrator.core.jobs.ports import JobStore
from services.orchestrator.core.jobs.records import BatchRecord, BatchRequest, BatchResult, IngestJobRequest, JobRecord
from services.orchestrator.core.jobs.runner import JobRunner
from services.orchestrator.core.permissions import access_filters
from services.orchestrator.core.ports import Embeddings, Ports
from services.orchestrator.core.query.cache import AnswerCache, CacheCounts
from services.orchestrator.core.query.pipeline import QueryPipeline
from services.orchestrator.core.reads import ScopedReads
from services.orchestrator.core.requests import QuerySpec, resolve
from services.orchestrator.core.settings import BatchSettings, IngestSettings, QueryDefaults
from services.orchestrator.core.sources.calls import SourceCalls
from services.orchestrator.core.sources.manager import SourceManager
from services.orchestrator.core.stores import CallCounts, CollectionVersions, Monitor, SharedAnswers

QUERIES = Counter("ragmesh_queries_total", "Queries answered, by status", ["status"])


@dataclass(frozen=True)
class Stats:
    """Cache counters and per-component call counts of this replica."""

    cache: CacheCounts
    l2_errors: int
    l1_entries: int
    l2_enabled: bool
    components: dict[str, CallCounts]
    queries: int


@dataclass
class CoreParts:
    """Everything the facade runs on, built by the composition root."""

    ports: Ports
    cache: AnswerCache
    shared_answers: SharedAnswers
    versions: CollectionVersions
    pipeline: QueryPipeline
    ingestor: Ingestor
    jobs: JobManager
    experiments: Experiments
    defaults: QueryDefaults
    ingest: IngestSettings
    batch: BatchSettings
    sources: SourceManager
    monitor: Monitor | None = None
    job_store: JobStore | None = None
    #: Started by :meth:`Orchestrator.start_parsers` (forks the parser processes).
    start_parsers: Callable[[], Awaitable[None]] | None = None
    #: Closed in this order by :meth:`Orchestrator.close`.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


class Orchestrator(ScopedReads, SourceCalls):
    """The facade over the pipeline, ingestion, jobs, cache and experiments (documents and
    collections in :class:`ScopedReads`, sources in :class:`SourceCalls`)."""

    parts: CoreParts

    def __init__(self, parts: CoreParts) -> None:
        self.parts = parts
        self.experiments = parts.experiments
        self.queries = 0
        self.runner = (
            JobRunner(parts.job_store, parts.ingestor, self._answer_for, parts.ingest.max_document_chars,
                      parts.batch.concurrency)
            if parts.job_store is not None
            else None
        )  # fmt: skip

    # Lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the version publisher (the parser processes start on first use, or with
        :meth:`start_parsers`)."""
        self.parts.versions.start()

    async def start_parsers(self) -> None:
        """Fork the parser pool's worker processes now rather than on the first file."""
        if self.parts.start_parsers is not None:
            await self.parts.start_parsers()

    async def close(self) -> None:
        """Store pending experiment records and close what the core was built with."""
        await self.parts.jobs.close()
        await self.experiments.flush()
        await self.parts.versions.close()
        for close in self.parts.closers:
            await close()

    # Queries -----------------------------------------------------------------------------

    def resolve(self, request: QueryInput) -> QuerySpec:
        """The request with its experiment variant's settings applied, checked and completed
        with this server's defaults, for the caller's tenant."""
        principal = current_principal()
        collection = request.collection or self.parts.defaults.collection
        assignment = self.experiments.assign(collection, request.caller_id, current_trace_id(), request.variant)
        if assignment is None:
            spec = resolve(request, self.parts.defaults)
        else:
            spec = resolve(apply_variant(request, assignment), self.parts.defaults)
            template = assignment.settings.prompt_template
            spec = dataclasses.replace(
                spec, experiment=assignment.experiment, prompt_template=template, assignment=assignment
            )
        # The collection actually searched (a variant may change it) must be the caller's;
        # the scope keeps one tenant's cached answers from another, whatever they ask, and
        # the access clause (also in the cache key) what the caller may not read from it.
        authorize(principal, spec.collection)
        filters = spec.filters + access_filters(principal)
        return dataclasses.replace(spec, filters=filters, scope=scope_key(principal))

    async def query(self, spec: QuerySpec, deadline: Deadline) -> AsyncGenerator[Event, None]:
        """The pipeline's events, counted by outcome (and recorded for its experiment)."""
        status = "OK"
        assignment = spec.assignment
        try:
            events = self.parts.pipeline.run(spec, deadline)
            if assignment is not None:
                events = recorded(events, self.experiments, assignment)
            async with contextlib.aclosing(events):
                async for event in events:
                    yield event
        except BaseException as error:  # counted as the caller will see it, then re-raised
            status = status_of(error).value
            raise
        finally:
            self.queries += 1
            QUERIES.labels(status).inc()

    async def answer(self, request: QueryInput, deadline: Deadline) -> Answer:
        """A whole answer: :meth:`resolve`, then :meth:`query`'s events folded."""
        answer = Answer()
        async with contextlib.aclosing(self.query(self.resolve(request), deadline)) as events:
            async for event in events:
                answer.add(event)
        return answer

    async def _answer_for(self, request: QueryInput, principal: Principal) -> Answer:
        """A batch's query, answered as its submitter's live query would be."""
        bind_principal(principal)
        return await self.answer(request, Deadline(None))

    async def embed(self, texts: Sequence[str], as_query: bool, deadline: Deadline) -> Embeddings:
        """Vectors and token counts of ``texts`` (the embedder's model, query or document side)."""
        return await self.parts.ports.embedder.embed(texts, as_query, deadline)

    # Documents and collections -----------------------------------------------------------

    def ingest(self, batches: AsyncIterator[IngestBatch], deadline: Deadline) -> AsyncIterator[IngestProgress]:
        """Index streamed batches (into a collection the caller may write), yielding progress."""
        return self.parts.ingestor.run(writable(batches, current_principal()), deadline)

    # Experiments -------------------------------------------------------------------------

    async def experiment_report(
        self, name: str, metric: str, *, chart: bool, **options: bool
    ) -> tuple[ExperimentReport, bytes | None]:
        """An experiment's report, for callers who may read every collection it covers."""
        principal = current_principal()
        for collection in self.experiments.experiment(name).collections:
            authorize(principal, collection)
        return await self.experiments.report(name, metric, chart=chart, **options)

    async def feedback(self, trace_id: str, rating: float, relevance: Mapping[str, int]) -> tuple[str, str]:
        """Record a rating (and per-source relevance) of an answer; its (experiment, variant)."""
        return await self.experiments.record_feedback(trace_id, rating, relevance)

    # Background work ---------------------------------------------------------------------

    async def submit_job(self, request: IngestJobRequest) -> str:
        """An ingestion job into a collection the caller may write; its id is the tenant's."""
        principal = current_principal()
        authorize(principal, request.collection, write=True)
        return await self.parts.jobs.submit(request, owner_tag(principal))

    async def job(self, job_id: str) -> JobRecord:
        """A job of the caller's tenant (another tenant's id is NotFound, as if it did not exist)."""
        check_owner(job_id, "ingestion job")
        return await self.parts.jobs.get(job_id)

    def watch_job(self, job_id: str) -> AsyncIterator[JobRecord]:
        """A job's state on every change, for the caller's tenant only."""
        check_owner(job_id, "ingestion job")
        return self.parts.jobs.watch(job_id)

    async def submit_batch(self, queries: Sequence[QueryInput]) -> str:
        """A batch of queries on collections the caller may read, answered later for this
        caller (tenant scope, collections, experiment assignment); its id is the tenant's."""
        principal = current_principal()
        for query in queries:
            authorize(principal, query.collection or self.parts.defaults.collection)
        return await self.parts.jobs.submit_batch(BatchRequest(tuple(queries), principal), owner_tag(principal))

    async def batch(self, batch_id: str, include_results: bool) -> tuple[BatchRecord, list[BatchResult]]:
        """A batch of the caller's tenant, with its results when asked."""
        check_owner(batch_id, "query batch")
        return await self.parts.jobs.get_batch(batch_id, include_results)

    def job_runner(self) -> JobRunner:
        """What the worker runs jobs and batches with (a job store must be configured)."""
        if self.runner is None:
            raise FailedPrecondition(NO_ENGINE)
        return self.runner

    # Operations --------------------------------------------------------------------------

    def stats(self) -> Stats:
        """Cache counters and per-component call counts of this replica."""
        cache, shared, monitor = self.parts.cache, self.parts.shared_answers, self.parts.monitor
        return Stats(
            cache=cache.counts,
            l2_errors=shared.errors,
            l1_entries=len(cache.l1) if cache.l1 is not None else 0,
            l2_enabled=shared.enabled,
            components=dict(monitor.call_counts()) if monitor is not None else {},
            queries=self.queries,
        )

    async def health(self) -> list[ComponentHealth]:
        """The orchestrator (serving, since it answers) and each component's health."""
        health = [ComponentHealth("orchestrator", "SERVING")]
        if self.parts.monitor is not None:
            health += await self.parts.monitor.health()
        return health
