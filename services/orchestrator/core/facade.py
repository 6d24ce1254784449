"""The orchestrator's core facade: queries (with status metrics), ingestion, jobs,
collections, stats and health — everything a transport calls, in domain types only."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from ragmesh.v1 import orchestrator_pb2
from services.common.auth import Principal, authorize, current_principal, scope_key
from services.common.errors import InvalidArgument, NotFound, status_of
from services.common.tracing import current_trace_id
from services.orchestrator.adapters.components.channels import CallCounts, Components
from services.orchestrator.adapters.components.grpc_ports import grpc_ports
from services.orchestrator.adapters.redis.guard import RedisGuard
from services.orchestrator.config import OrchestratorConfig
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import CollectionSummary, ComponentHealth, Event, IngestProgress, QueryInput
from services.orchestrator.core.ingest.ingestor import Ingestor
from services.orchestrator.core.ingest.state import IngestBatch
from services.orchestrator.core.jobs import JobManager
from services.orchestrator.core.ports import Ports
from services.orchestrator.core.query.cache import AnswerCache, CacheCounts, CollectionVersions
from services.orchestrator.core.query.pipeline import QueryPipeline
from services.orchestrator.core.query.rerank import CrossEncoder
from services.orchestrator.core.requests import QuerySpec, check_collection, resolve
from services.orchestrator.experiments.analysis import ExperimentReport
from services.orchestrator.experiments.manager import Experiments
from services.orchestrator.experiments.runs import apply_variant, recorded
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
                config.embedder_addr,
                config.retriever_addr,
                config.generator_addr,
                config.components_behind_envoy,
                config.components_tls,
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
        # Jobs and batches run on the worker component; this replica only stores and sends them.
        self.jobs = JobManager(settings.redis_url, config.ingest, settings.broker_timeout_seconds)
        self.queries = 0
        self.experiments = Experiments.create(config.experiments, self.redis)

    def start(self) -> None:
        """Start the version publisher (the parser processes start on first use, or with
        :meth:`start_parsers`)."""
        self.versions.start()

    async def start_parsers(self) -> None:
        """Fork the parser pool's worker processes now rather than on the first file."""
        await self.parsers.start()

    async def close(self) -> None:
        """Store pending experiment records, close the task engine's pool, the parsers,
        channels and Redis."""
        await self.jobs.close()
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
        principal = current_principal()
        collection = request.collection or self.config.defaults.collection
        assignment = self.experiments.assign(collection, request.caller_id, current_trace_id(), request.variant)
        if assignment is None:
            spec = resolve(request, self.config.defaults)
        else:
            spec = resolve(apply_variant(request, assignment), self.config.defaults)
            template = assignment.settings.prompt_template
            spec = dataclasses.replace(
                spec, experiment=assignment.experiment, prompt_template=template, assignment=assignment
            )
        # The collection actually searched (a variant may change it) must be the caller's;
        # the scope keeps one tenant's cached answers from another, whatever they ask.
        authorize(principal, spec.collection)
        return dataclasses.replace(spec, scope=scope_key(principal))

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
            status = status_of(error).value
            raise
        finally:
            self.queries += 1
            QUERIES.labels(status).inc()

    def ingest(self, batches: AsyncIterator[IngestBatch], deadline: Deadline) -> AsyncIterator[IngestProgress]:
        """Index streamed batches (into a collection the caller may write), yielding progress."""
        return self.ingestor.run(_writable(batches, current_principal()), deadline)

    async def delete_documents(
        self, collection: str, document_ids: Sequence[str], deadline: Deadline
    ) -> tuple[int, int]:
        """Delete every chunk of the documents and bump the collection's version; returns
        (chunks deleted, new version)."""
        check_collection(collection)
        authorize(current_principal(), collection, write=True)
        if not document_ids or len(document_ids) > MAX_DELETE_IDS:
            raise InvalidArgument(f"document_ids must hold 1 to {MAX_DELETE_IDS} ids, got {len(document_ids)}")
        if any(not d.strip() for d in document_ids):
            raise InvalidArgument("document_ids contains an empty id")
        deleted = await self.ports.retriever.delete(collection, document_ids, (), deadline)
        return deleted, await self.versions.bump(collection)

    async def collections(self, deadline: Deadline) -> list[CollectionSummary]:
        """Every collection with its size and version."""
        summaries = []
        principal = current_principal()
        for info in await self.ports.retriever.collections(deadline):
            if not principal.may(info.name):
                continue  # another tenant's collection is not even listed
            await self.versions.get(info.name)
            summaries.append(
                CollectionSummary(
                    info.name, info.count, self.versions.number(info.name), info.dimension, info.full_text
                )
            )
        return summaries

    async def experiment_report(
        self, name: str, metric: str, *, chart: bool, **options: bool
    ) -> tuple[ExperimentReport, bytes | None]:
        """An experiment's report, for callers who may read every collection it covers."""
        principal = current_principal()
        for collection in self.experiments.experiment(name).collections:
            authorize(principal, collection)
        return await self.experiments.report(name, metric, chart=chart, **options)

    async def submit_job(self, request: orchestrator_pb2.SubmitIngestJobRequest) -> str:
        """An ingestion job into a collection the caller may write; its id is the tenant's."""
        principal = current_principal()
        authorize(principal, request.collection, write=True)
        return await self.jobs.submit(request, owner_tag(principal))

    async def job(self, job_id: str) -> orchestrator_pb2.IngestJob:
        """A job of the caller's tenant (another tenant's id is NotFound, as if it did not exist)."""
        _check_owner(job_id, "ingestion job")
        return await self.jobs.get(job_id)

    def watch_job(self, job_id: str) -> AsyncIterator[orchestrator_pb2.IngestJob]:
        """A job's state on every change, for the caller's tenant only."""
        _check_owner(job_id, "ingestion job")
        return self.jobs.watch(job_id)

    async def submit_batch(self, request: orchestrator_pb2.SubmitQueryBatchRequest) -> str:
        """A batch of queries on collections the caller may read; its id is the tenant's."""
        principal = current_principal()
        for query in request.queries:
            authorize(principal, query.collection or self.config.defaults.collection)
        return await self.jobs.submit_batch(request, owner_tag(principal))

    async def batch(self, batch_id: str, include_results: bool) -> orchestrator_pb2.QueryBatch:
        """A batch of the caller's tenant."""
        _check_owner(batch_id, "query batch")
        return await self.jobs.get_batch(batch_id, include_results)

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


async def _writable(batches: AsyncIterator[IngestBatch], principal: Principal) -> AsyncIterator[IngestBatch]:
    """The batches, once the first one's collection (the one ingestion writes) is the caller's."""
    first = True
    async for batch in batches:
        if first:
            authorize(principal, batch.collection, write=True)
            first = False
        yield batch


def owner_tag(principal: Principal) -> str:
    """The tenant's tag in job and batch ids ("" with auth off): not the tenant's name."""
    if not principal.tenant:
        return ""
    return hashlib.sha256(principal.tenant.encode()).hexdigest()[:12]


def _check_owner(record_id: str, kind: str) -> None:
    """NotFound unless the caller's tenant submitted ``record_id`` (with auth on)."""
    tag = owner_tag(current_principal())
    if record_id and tag and not record_id.startswith(tag + "-"):
        raise NotFound(f"no {kind} with id {record_id[:80]!r}")
