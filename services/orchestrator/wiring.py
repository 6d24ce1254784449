"""The composition root: :func:`build_core` builds the orchestrator's core from a
:class:`CoreConfig` — the adapters (component channels, Redis stores, the task queue, the
cross-encoder, the parser pool) and the core over them.

It is the one place that does, used by the orchestrator process, the worker and the
in-process benchmark alike, so every setting (cache sizes and TTLs, parsing limits, the
cross-encoder, experiments) means the same everywhere. Tests pass fake ``ports`` (and keep
the rest real, or Redis-less with an empty URL).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from ragmesh.vocabulary.tls import TlsFileError
from services.orchestrator.adapters.background.queue import CeleryTaskQueue
from services.orchestrator.adapters.components import grpc_ports
from services.orchestrator.adapters.components.channels import Components
from services.orchestrator.adapters.redis.answers import RedisAnswers
from services.orchestrator.adapters.redis.experiment_records import RedisRecordStore
from services.orchestrator.adapters.redis.guard import RedisGuard
from services.orchestrator.adapters.redis.job_store import RedisJobStore
from services.orchestrator.adapters.redis.source_state import RedisSourceStates
from services.orchestrator.adapters.redis.versions import RedisCollectionVersions
from services.orchestrator.adapters.sources import reader_for
from services.orchestrator.config import CoreConfig
from services.orchestrator.core.experiments.manager import Experiments
from services.orchestrator.core.experiments.records import MemoryRecordStore, RecordStore
from services.orchestrator.core.facade import CoreParts, Orchestrator
from services.orchestrator.core.ingest.ingestor import Ingestor
from services.orchestrator.core.jobs.manager import JobManager
from services.orchestrator.core.jobs.ports import JobStore, TaskQueue
from services.orchestrator.core.ports import Ports
from services.orchestrator.core.query.cache import AnswerCache
from services.orchestrator.core.query.pipeline import QueryPipeline
from services.orchestrator.core.query.rerank import Reranker
from services.orchestrator.core.sources.manager import SourceManager
from services.orchestrator.core.sources.model import SourceReader, SourceSpec
from services.orchestrator.core.sources.sync import SourceSyncer
from services.orchestrator.core.stores import CollectionVersions
from services.parsing import ParserPool


class WiringError(Exception):
    """The core cannot be built from this config (a TLS file, a model); the message says why."""


async def open_core(config: CoreConfig) -> Orchestrator:
    """The core as a process runs it: the cross-encoder (when configured) loaded off the
    event loop, then :func:`build_core`. Call it on the event loop that will use the core."""
    cross_encoder = await _load_cross_encoder(config.cross_encoder_path) if config.cross_encoder_path else None
    return build_core(config, cross_encoder=cross_encoder)


def build_core(
    config: CoreConfig,
    *,
    ports: Ports | None = None,
    cross_encoder: Reranker | None = None,
    jobs: tuple[JobStore, TaskQueue] | None = None,
) -> Orchestrator:
    """The core wired to its adapters (nothing is started; see :meth:`Orchestrator.start`).

    ``ports`` replaces the gRPC components (tests, the in-process benchmark); ``jobs``
    replaces the Redis job store and the Celery queue (tests); ``cross_encoder`` is the
    reranker for ``rerank=cross_encoder`` (None: not configured).
    """
    redis = config.redis
    cache_guard = RedisGuard(redis.url, redis.timeout_seconds, redis.backoff_seconds)
    closers: list[Callable[[], Awaitable[None]]] = []
    components = None
    if ports is None:
        components = _connect(config)
        ports = grpc_ports(components)
        closers.append(components.close)
    if cross_encoder is not None:
        closers.append(_closer(cross_encoder))
    shared, versions = RedisAnswers(cache_guard), RedisCollectionVersions(cache_guard)
    cache = AnswerCache(shared, config.cache.l1_entries, config.cache.l1_ttl_seconds, config.cache.l2_ttl_seconds)
    # Raw files are parsed here, in worker processes with time and memory limits.
    parsers = ParserPool(config.parse.workers, config.parse.limits)
    closers += [parsers.close, cache_guard.close]
    job_store, queue = jobs if jobs is not None else _job_engine(config)
    ingestor = Ingestor(ports.embedder, ports.retriever, versions, config.ingest, parsers)
    sources = _sources(config, ingestor, ports, versions, (job_store, queue), closers=closers)
    parts = CoreParts(
        ports=ports,
        cache=cache,
        shared_answers=shared,
        versions=versions,
        pipeline=QueryPipeline(ports, cache, versions, cross_encoder),
        ingestor=ingestor,
        jobs=JobManager(job_store, queue, config.ingest),
        experiments=Experiments(config.experiments.load(), _experiment_records(config, cache_guard)),
        defaults=config.defaults,
        ingest=config.ingest,
        batch=config.batch,
        sources=sources,
        monitor=components,
        job_store=job_store,
        start_parsers=parsers.start,
        closers=closers,
    )
    return Orchestrator(parts)


def _job_engine(config: CoreConfig) -> tuple[JobStore | None, TaskQueue | None]:
    """The job records and the task queue, both on the configured Redis (none without one)."""
    redis = config.redis
    if not redis.url:
        return None, None
    # A guard of its own: the cache's is tuned for 100 ms lookups, while a job's payload
    # (up to max_documents documents) takes longer to write; no back-off either.
    store = RedisJobStore(RedisGuard(redis.url, redis.broker_timeout_seconds, 0.0))
    return store, CeleryTaskQueue(redis.url, redis.broker_timeout_seconds)


def _sources(
    config: CoreConfig,
    ingestor: Ingestor,
    ports: Ports,
    versions: CollectionVersions,
    engine: tuple[JobStore | None, TaskQueue | None],
    *,
    closers: list[Callable[[], Awaitable[None]]],
) -> SourceManager:
    """The declared sources, synced through the ingestor with their state in Redis (no syncs without it)."""
    redis, settings = config.redis, config.sources
    syncer = None
    if redis.url:
        guard = RedisGuard(redis.url, redis.broker_timeout_seconds, 0.0)
        closers.append(guard.close)
        syncer = SourceSyncer(ingestor, ports.retriever, versions, RedisSourceStates(guard))
    cache = Path(settings.cache_dir)

    def readers(spec: SourceSpec) -> SourceReader:
        return reader_for(spec, cache)

    return SourceManager(settings.load(), readers, syncer, engine, settings.lock_seconds)


def _connect(config: CoreConfig) -> Components:
    try:
        return Components.connect(
            config.embedder_addr,
            config.retriever_addr,
            config.generator_addr,
            config.components_behind_envoy,
            config.components_tls,
        )
    except TlsFileError as error:
        raise WiringError(f"TLS to the components: {error}") from None


async def _load_cross_encoder(path: str) -> Reranker:
    """The cross-encoder, loaded off the event loop (it takes seconds)."""
    from services.orchestrator.adapters.models.cross_encoder import CrossEncoder

    return await asyncio.to_thread(CrossEncoder, path)


def _closer(reranker: Reranker) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        reranker.close()

    return close


def _experiment_records(config: CoreConfig, guard: RedisGuard) -> RecordStore:
    """Experiment records in Redis when it is configured (shared by replicas), else in process."""
    settings = config.experiments
    if guard.configured:
        return RedisRecordStore(guard, settings.max_records, settings.feedback_ttl_seconds, settings.key_prefix)
    return MemoryRecordStore(settings.max_records, settings.feedback_ttl_seconds)
