"""The orchestrator's domain facade: queries (with status metrics), ingestion, jobs,
collections, stats and health — everything the servicer calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from prometheus_client import Counter

from ragmesh.v1 import orchestrator_pb2, retriever_pb2
from services.common.errors import InvalidArgument, NotFound, status_code_for
from services.orchestrator.cache import AnswerCache, CollectionVersions
from services.orchestrator.clients import Components, Deadline
from services.orchestrator.config import OrchestratorConfig
from services.orchestrator.ingest import IngestBatch, Ingestor
from services.orchestrator.jobs import JobManager
from services.orchestrator.pipeline import Event, QueryPipeline
from services.orchestrator.redis_store import RedisGuard
from services.orchestrator.requests import QuerySpec, check_collection
from services.orchestrator.rerank import CrossEncoder

QUERIES = Counter("ragmesh_queries_total", "Queries answered, by status", ["status"])
MAX_DELETE_IDS = 10_000


class Orchestrator:
    """Wires the pipeline, ingestion, jobs and cache to the components."""

    def __init__(self, config: OrchestratorConfig, cross_encoder: CrossEncoder | None = None) -> None:
        self.config = config
        self.cross_encoder = cross_encoder
        settings = config.cache
        self.redis = RedisGuard(settings.redis_url, settings.redis_timeout_seconds, settings.redis_backoff_seconds)
        self.components = Components.connect(
            config.embedder_addr, config.retriever_addr, config.generator_addr, config.components_behind_envoy
        )
        self.cache = AnswerCache(self.redis, settings.l1_entries, settings.l1_ttl_seconds, settings.l2_ttl_seconds)
        self.versions = CollectionVersions(self.redis)
        self.pipeline = QueryPipeline(self.components, self.cache, self.versions, cross_encoder)
        self.ingestor = Ingestor(self.components, self.versions, config.ingest)
        # Jobs and batches run on the worker component; this replica only stores and sends them.
        self.jobs = JobManager(settings.redis_url, config.ingest, settings.broker_timeout_seconds)
        self.queries = 0

    def start(self) -> None:
        """Start the version publisher."""
        self.versions.start()

    async def close(self) -> None:
        """Close the engine's pool, channels and Redis."""
        await self.jobs.close()
        await self.versions.close()
        await self.components.close()
        if self.cross_encoder is not None:
            self.cross_encoder.close()
        await self.redis.close()

    async def query(self, spec: QuerySpec, deadline: Deadline) -> AsyncIterator[Event]:
        """The pipeline's events, counted by outcome."""
        status = "OK"
        try:
            async for event in self.pipeline.run(spec, deadline):
                yield event
        except BaseException as error:  # counted as the caller will see it, then re-raised
            status = status_code_for(error).name
            raise
        finally:
            self.queries += 1
            QUERIES.labels(status).inc()

    def ingest(
        self, batches: AsyncIterator[IngestBatch], deadline: Deadline
    ) -> AsyncIterator[orchestrator_pb2.IngestProgress]:
        """Index streamed batches, yielding progress."""
        return self.ingestor.run(batches, deadline)

    async def delete_documents(
        self, collection: str, document_ids: list[str], deadline: Deadline
    ) -> orchestrator_pb2.DeleteDocumentsResponse:
        """Delete every chunk of the documents and bump the collection's version."""
        check_collection(collection)
        if not document_ids or len(document_ids) > MAX_DELETE_IDS:
            raise InvalidArgument(f"document_ids must hold 1 to {MAX_DELETE_IDS} ids, got {len(document_ids)}")
        try:
            reply = await self.components.retriever.Delete(
                retriever_pb2.DeleteRequest(collection=collection, document_ids=document_ids),
                timeout=deadline.remaining(60.0),
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"collection {collection!r} does not exist") from None
            raise
        version = await self.versions.bump(collection)
        return orchestrator_pb2.DeleteDocumentsResponse(chunks_deleted=reply.deleted, collection_version=version)

    async def collections(self, deadline: Deadline) -> orchestrator_pb2.OrchestratorCollectionsResponse:
        """Every collection with its size and version."""
        reply = await self.components.retriever.ListCollections(
            retriever_pb2.ListCollectionsRequest(), timeout=deadline.remaining(30.0)
        )
        summaries = []
        for info in reply.collections:
            await self.versions.get(info.name)
            summaries.append(
                orchestrator_pb2.CollectionSummary(
                    name=info.name,
                    chunks=info.count,
                    version=self.versions.number(info.name),
                    dimension=info.dimension,
                    full_text=info.full_text,
                )
            )
        return orchestrator_pb2.OrchestratorCollectionsResponse(collections=summaries)

    def stats(self) -> orchestrator_pb2.GetStatsResponse:
        """Cache counters and per-component call counts of this replica."""
        counts = self.cache.counts
        cache = orchestrator_pb2.CacheStats(
            l1_hits=counts.l1_hits,
            l2_hits=counts.l2_hits,
            misses=counts.misses,
            l2_errors=self.redis.errors,
            hit_rate=counts.hit_rate,
            l1_entries=len(self.cache.l1) if self.cache.l1 is not None else 0,
            l2_enabled=self.redis.configured,
        )
        components = [
            orchestrator_pb2.ComponentStats(component=name, requests=c.requests, errors=c.errors)
            for name, c in self.components.counts.items()
        ]
        return orchestrator_pb2.GetStatsResponse(cache=cache, components=components, queries=self.queries)

    async def health(self) -> orchestrator_pb2.CheckHealthResponse:
        """The orchestrator (serving, since it answers) and each component's health."""
        names = list(self.components.addresses)
        results = await asyncio.gather(*(self.components.health_of(name) for name in names))
        components = [orchestrator_pb2.ComponentHealth(component="orchestrator", status="SERVING")]
        for name, (status, detail) in zip(names, results, strict=True):
            components.append(
                orchestrator_pb2.ComponentHealth(
                    component=name, status=status, address=self.components.addresses[name], detail=detail
                )
            )
        return orchestrator_pb2.CheckHealthResponse(
            components=components, all_serving=all(c.status == "SERVING" for c in components)
        )
