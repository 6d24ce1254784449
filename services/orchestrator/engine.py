"""The orchestrator's core facade: queries (with status metrics), ingestion, jobs,
collections, stats and health — everything a transport calls, in domain types only."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from services.common.errors import InvalidArgument, status_code_for
from services.common.tracing import current_trace_id
from services.orchestrator.cache import AnswerCache, CacheCounts, CollectionVersions
from services.orchestrator.clients import CallCounts, Components
from services.orchestrator.config import OrchestratorConfig
from services.orchestrator.deadline import Deadline
from services.orchestrator.domain import CollectionSummary, ComponentHealth, Event, IngestProgress, QueryInput
from services.orchestrator.experiment_runs import apply_variant, recorded
from services.orchestrator.experiments.manager import Experiments
from services.orchestrator.grpc_ports import grpc_ports
from services.orchestrator.ingest import IngestBatch, Ingestor
from services.orchestrator.job_store import JobStore, MemoryJobStore, RedisJobStore
from services.orchestrator.jobs import JobManager
from services.orchestrator.pipeline import QueryPipeline
from services.orchestrator.ports import Ports
from services.orchestrator.redis_store import RedisGuard
from services.orchestrator.requests import QuerySpec, check_collection, resolve
from services.orchestrator.rerank import CrossEncoder
from services.parsing import ParserPool

QUERIES = Counter("ragmesh_queries_total", "Queries answered, by status", ["status"])
MAX_DELETE_IDS = 10_000


@dataclass(frozen=True)
class Stats:
    """Cache counters and per-component call counts of this replica."""

    cache: CacheCounts
    l2_errors: int
    l1_entries: int
    l2_enabled: bool
    components: dict[str, CallCounts]
    queries: int


class Orchestrator:
    """Wires the pipeline, ingestion, jobs and cache to the components' ports."""

    def __init__(
        self,
        config: OrchestratorConfig,
        cross_encoder: CrossEncoder | None = None,
        ports: Ports | None = None,
        components: Components | None = None,
    ) -> None:
        self.config = config
        self.cross_encoder = cross_encoder
        settings = config.cache
        self.redis = RedisGuard(settings.redis_url, settings.redis_timeout_seconds, settings.redis_backoff_seconds)
        if ports is None:
            components = components or Components.connect(
                config.embedder_addr, config.retriever_addr, config.generator_addr, config.components_behind_envoy
            )
            ports = grpc_ports(components)
        self.components = components
        self.ports = ports
        self.cache = AnswerCache(self.redis, settings.l1_entries, settings.l1_ttl_seconds, settings.l2_ttl_seconds)
        self.versions = CollectionVersions(self.redis)
        self.pipeline = QueryPipeline(ports, self.cache, self.versions, cross_encoder)
        #: Raw files are parsed here, in worker processes with time and memory limits.
        self.parsers = ParserPool(config.parse.workers, config.parse.limits)
        self.ingestor = Ingestor(ports.embedder, ports.retriever, self.versions, config.ingest, self.parsers)
        store: JobStore = RedisJobStore(self.redis) if self.redis.configured else MemoryJobStore()
        self.jobs = JobManager(store, self.ingestor, config.ingest)
        self.queries = 0
        self.experiments = Experiments.create(config.experiments, self.redis)

    def start(self) -> None:
        """Start the ingestion workers and the version publisher (the parser processes
        start on first use, or with :meth:`start_parsers`)."""
        self.jobs.start()
        self.versions.start()

    async def start_parsers(self) -> None:
        """Fork the parser pool's worker processes now rather than on the first file."""
        await self.parsers.start()

    async def close(self) -> None:
        """Hand running jobs back, store pending experiment records, close channels and Redis."""
        await self.jobs.stop()
        await self.parsers.close()
        await self.experiments.flush()
        await self.versions.close()
        if self.components is not None:
            await self.components.close()
        if self.cross_encoder is not None:
            self.cross_encoder.close()
        await self.redis.close()

    def resolve(self, request: QueryInput) -> QuerySpec:
        """The request with its experiment variant's settings applied, checked and completed
        with this server's defaults."""
        collection = request.collection or self.config.defaults.collection
        assignment = self.experiments.assign(collection, request.caller_id, current_trace_id(), request.variant)
        if assignment is None:
            return resolve(request, self.config.defaults)
        spec = resolve(apply_variant(request, assignment), self.config.defaults)
        template = assignment.settings.prompt_template
        return dataclasses.replace(
            spec, experiment=assignment.experiment, prompt_template=template, assignment=assignment
        )

    async def query(self, spec: QuerySpec, deadline: Deadline) -> AsyncGenerator[Event, None]:
        """The pipeline's events, counted by outcome (and recorded for its experiment)."""
        status = "OK"
        assignment = spec.assignment
        try:
            events = self.pipeline.run(spec, deadline)
            if assignment is not None:
                events = recorded(events, self.experiments, assignment)
            async with contextlib.aclosing(events):
                async for event in events:
                    yield event
        except BaseException as error:  # counted as the caller will see it, then re-raised
            status = status_code_for(error).name
            raise
        finally:
            self.queries += 1
            QUERIES.labels(status).inc()

    def ingest(self, batches: AsyncIterator[IngestBatch], deadline: Deadline) -> AsyncIterator[IngestProgress]:
        """Index streamed batches, yielding progress."""
        return self.ingestor.run(batches, deadline)

    async def delete_documents(
        self, collection: str, document_ids: Sequence[str], deadline: Deadline
    ) -> tuple[int, int]:
        """Delete every chunk of the documents and bump the collection's version; returns
        (chunks deleted, new version)."""
        check_collection(collection)
        if not document_ids or len(document_ids) > MAX_DELETE_IDS:
            raise InvalidArgument(f"document_ids must hold 1 to {MAX_DELETE_IDS} ids, got {len(document_ids)}")
        if any(not d.strip() for d in document_ids):
            raise InvalidArgument("document_ids contains an empty id")
        deleted = await self.ports.retriever.delete(collection, document_ids, (), deadline)
        return deleted, await self.versions.bump(collection)

    async def collections(self, deadline: Deadline) -> list[CollectionSummary]:
        """Every collection with its size and version."""
        summaries = []
        for info in await self.ports.retriever.collections(deadline):
            await self.versions.get(info.name)
            summaries.append(
                CollectionSummary(
                    info.name, info.count, self.versions.number(info.name), info.dimension, info.full_text
                )
            )
        return summaries

    def stats(self) -> Stats:
        """Cache counters and per-component call counts of this replica."""
        return Stats(
            cache=self.cache.counts,
            l2_errors=self.redis.errors,
            l1_entries=len(self.cache.l1) if self.cache.l1 is not None else 0,
            l2_enabled=self.redis.configured,
            components=dict(self.components.counts) if self.components is not None else {},
            queries=self.queries,
        )

    async def health(self) -> list[ComponentHealth]:
        """The orchestrator (serving, since it answers) and each component's health."""
        health = [ComponentHealth("orchestrator", "SERVING")]
        if self.components is None:
            return health
        names = list(self.components.addresses)
        results = await asyncio.gather(*(self.components.health_of(name) for name in names))
        for name, (status, detail) in zip(names, results, strict=True):
            health.append(ComponentHealth(name, status, self.components.addresses[name], detail))
        return health
