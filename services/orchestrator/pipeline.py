"""The query pipeline: cache → embed → search → rerank → prompt → generate, as a stream of
events (sources first, then answer deltas, then a final message) that both Query and
QueryStream consume. Every stage is timed and traced; every downstream call gets the time
left of the incoming call.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import numpy as np
from opentelemetry import trace
from prometheus_client import Counter, Histogram

from ragmesh.v1 import common_pb2, embedder_pb2, generator_pb2, orchestrator_pb2, retriever_pb2
from services.common.errors import FailedPrecondition, NotFound
from services.common.metrics import LATENCY_BUCKETS
from services.common.tracing import current_trace_id, tracer
from services.orchestrator.cache import AnswerCache, CollectionVersions, cache_key
from services.orchestrator.clients import Components, Deadline
from services.orchestrator.prompt import NO_SOURCES_ANSWER, count_request, fit
from services.orchestrator.requests import QuerySpec
from services.orchestrator.rerank import Candidate, CrossEncoder, mmr

STAGE_SECONDS = Histogram(
    "ragmesh_orchestrator_stage_seconds", "Time per pipeline stage", ["stage"], buckets=LATENCY_BUCKETS
)
TIME_TO_FIRST_TOKEN = Histogram(
    "ragmesh_orchestrator_time_to_first_token_seconds", "Query arrival to first answer token", buckets=LATENCY_BUCKETS
)
SOURCES_RETURNED = Histogram(
    "ragmesh_orchestrator_sources_returned", "Sources per answer", buckets=(0, 1, 2, 3, 4, 5, 8, 10, 20, 50)
)
LLM_TOKENS = Counter("ragmesh_llm_tokens_total", "Generator tokens used by answers", ["type"])
_FINISHED = (common_pb2.FINISH_REASON_LENGTH, common_pb2.FINISH_REASON_STOP, common_pb2.FINISH_REASON_EOS)


@dataclass
class SourcesEvent:
    """The sources the answer cites (always the first event)."""

    sources: list[orchestrator_pb2.Source]
    cache: orchestrator_pb2.CacheLevel.ValueType
    variant: str
    trace_id: str


@dataclass
class DeltaEvent:
    """A piece of the answer."""

    text: str
    tokens: int


@dataclass
class FinalEvent:
    """The end: usage, timings, finish reason."""

    usage: common_pb2.Usage
    timings: orchestrator_pb2.StageTimings
    finish_reason: common_pb2.FinishReason.ValueType


Event = SourcesEvent | DeltaEvent | FinalEvent


@dataclass
class _Run:
    """Per-query bookkeeping: timings and the answer so far."""

    spec: QuerySpec
    deadline: Deadline
    started: float = field(default_factory=time.perf_counter)
    timings: orchestrator_pb2.StageTimings = field(default_factory=orchestrator_pb2.StageTimings)
    answer: list[str] = field(default_factory=list)
    query_vector: list[float] = field(default_factory=list)

    def stage(self, name: str, seconds: float) -> None:
        STAGE_SECONDS.labels(name).observe(seconds)
        setattr(self.timings, f"{name}_ms", getattr(self.timings, f"{name}_ms") + seconds * 1000)

    def finish(self) -> orchestrator_pb2.StageTimings:
        self.timings.total_ms = (time.perf_counter() - self.started) * 1000
        return self.timings


class QueryPipeline:
    """Answers queries with the components, the cache and an optional cross-encoder."""

    def __init__(
        self,
        components: Components,
        cache: AnswerCache,
        versions: CollectionVersions,
        cross_encoder: CrossEncoder | None,
    ) -> None:
        self.components = components
        self.cache = cache
        self.versions = versions
        self.cross_encoder = cross_encoder
        self._context_length: int | None = None

    async def run(self, spec: QuerySpec, deadline: Deadline) -> AsyncIterator[Event]:
        """The events of one query, sources first."""
        run = _Run(spec, deadline)
        _annotate(spec)
        if spec.rerank == "cross_encoder" and self.cross_encoder is None:
            raise FailedPrecondition(
                "cross-encoder reranking is not configured on this server "
                "(set RAGMESH_ORCHESTRATOR_CROSS_ENCODER_PATH); use NONE or MMR"
            )
        started = time.perf_counter()
        with tracer().start_as_current_span("cache.lookup") as lookup_span:
            key = cache_key(spec.cache_material(await self.versions.get(spec.collection)))
            hit = None if spec.bypass_cache else await self.cache.get(key)
            lookup_span.set_attribute("ragmesh.cache.level", hit[0] if hit else 0)
        run.stage("cache", time.perf_counter() - started)
        if hit is not None:
            async for event in self._replay(run, hit[0], hit[1]):
                yield event
            return
        candidates = await self._retrieve(run)
        ranked = await self._rerank(run, candidates)
        async for event in self._answer(run, ranked, key):
            yield event

    async def _retrieve(self, run: _Run) -> list[Candidate]:
        spec = run.spec
        started = time.perf_counter()
        with tracer().start_as_current_span("embed"):
            embedded = await self.components.embedder.Embed(
                embedder_pb2.EmbedRequest(texts=[spec.query], kind=embedder_pb2.EMBED_KIND_QUERY, truncate=True),
                timeout=run.deadline.remaining(30.0),
            )
        run.stage("embed", time.perf_counter() - started)
        vector = list(embedded.embeddings[0].values)
        started = time.perf_counter()
        with tracer().start_as_current_span("search") as span:
            response = await self._search(run, vector)
            span.set_attribute("ragmesh.candidates", len(response.hits))
        run.stage("search", time.perf_counter() - started)
        run.query_vector = vector
        return [
            Candidate(hit, hit.text, np.asarray(hit.vector, dtype=np.float32) if hit.vector else None, hit.score)
            for hit in response.hits
        ]

    async def _search(self, run: _Run, vector: list[float]) -> retriever_pb2.SearchResponse:
        spec = run.spec
        request = retriever_pb2.SearchRequest(
            collection=spec.collection,
            vector=vector,
            top_k=spec.candidates,
            filters=spec.filters,
            query_text=spec.query,
            mode=spec.search_mode,
            return_vectors=spec.rerank == "mmr",
        )
        try:
            return await self.components.retriever.Search(request, timeout=run.deadline.remaining(30.0))
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(
                    f"collection {spec.collection!r} does not exist; ingest documents into it first"
                ) from None
            raise

    async def _rerank(self, run: _Run, candidates: list[Candidate]) -> list[Candidate]:
        spec = run.spec
        if spec.rerank == "none" or len(candidates) <= 1:
            return candidates[: spec.top_k]
        started = time.perf_counter()
        with tracer().start_as_current_span("rerank") as span:
            span.set_attribute("ragmesh.rerank", spec.rerank)
            if spec.rerank == "mmr":
                query = np.asarray(run.query_vector, dtype=np.float32)
                ranked = mmr(query, candidates, spec.top_k, spec.mmr_lambda)
            else:
                assert self.cross_encoder is not None  # checked when the query started
                ranked = await self.cross_encoder.rerank(spec.query, candidates, spec.top_k)
        run.stage("rerank", time.perf_counter() - started)
        return ranked

    async def _answer(self, run: _Run, ranked: list[Candidate], key: str) -> AsyncIterator[Event]:
        spec = run.spec
        if spec.retrieval_only or not ranked:
            sources = _numbered(ranked)
            yield SourcesEvent(sources, orchestrator_pb2.CACHE_LEVEL_NONE, spec.variant, current_trace_id())
            SOURCES_RETURNED.observe(len(sources))
            if not spec.retrieval_only:
                run.answer.append(NO_SOURCES_ANSWER)
                yield DeltaEvent(NO_SOURCES_ANSWER, 0)
            reason = common_pb2.FINISH_REASON_UNSPECIFIED if spec.retrieval_only else common_pb2.FINISH_REASON_STOP
            yield FinalEvent(common_pb2.Usage(), run.finish(), reason)
            return
        started = time.perf_counter()
        with tracer().start_as_current_span("prompt.build") as span:
            texts = [c.text for c in ranked]
            counts = await self.components.generator.CountTokens(
                count_request(spec.query, texts), timeout=run.deadline.remaining(30.0)
            )
            prompt = fit(spec.query, texts, counts, await self._context(run), spec.sampling.max_new_tokens)
            span.set_attribute("ragmesh.sources", len(prompt.included))
        run.stage("prompt", time.perf_counter() - started)
        sources = _numbered([ranked[i] for i in prompt.included])
        SOURCES_RETURNED.observe(len(sources))
        yield SourcesEvent(sources, orchestrator_pb2.CACHE_LEVEL_NONE, spec.variant, current_trace_id())
        final = None
        async for event in self._generate(run, prompt.messages):
            if isinstance(event, FinalEvent):
                final = event
            yield event
        if final is not None and final.finish_reason in _FINISHED:
            await self._store(key, run, sources, final)

    async def _generate(self, run: _Run, messages: list[common_pb2.ChatMessage]) -> AsyncIterator[Event]:
        request = generator_pb2.GenerateRequest(messages=messages, sampling=run.spec.sampling)
        started = time.perf_counter()
        first_token: float | None = None
        with tracer().start_as_current_span("generate") as span:
            call = self.components.generator.Generate(request, timeout=run.deadline.remaining())
            try:
                async for response in call:
                    if response.HasField("delta"):
                        if first_token is None:
                            first_token = time.perf_counter()
                            run.timings.first_token_ms = (first_token - run.started) * 1000
                            TIME_TO_FIRST_TOKEN.observe(first_token - run.started)
                        run.answer.append(response.delta.text)
                        yield DeltaEvent(response.delta.text, response.delta.tokens)
                    else:
                        final = response.final
                        span.set_attribute("ragmesh.tokens.completion", final.usage.completion_tokens)
                        LLM_TOKENS.labels("prompt").inc(final.usage.prompt_tokens)
                        LLM_TOKENS.labels("completion").inc(final.usage.completion_tokens)
                        run.stage("generate", time.perf_counter() - started)
                        yield FinalEvent(final.usage, run.finish(), final.finish_reason)
            finally:
                call.cancel()  # a caller that left stops the generation (no-op when done)

    async def _store(self, key: str, run: _Run, sources: list[orchestrator_pb2.Source], final: FinalEvent) -> None:
        cached = orchestrator_pb2.QueryResponse(
            answer="".join(run.answer), sources=sources, finish_reason=final.finish_reason
        )
        await self.cache.put(key, cached.SerializeToString())

    async def _replay(self, run: _Run, level: int, payload: bytes) -> AsyncIterator[Event]:
        """A cached answer, streamed like a fresh one."""
        cached = orchestrator_pb2.QueryResponse.FromString(payload)
        cache_level = orchestrator_pb2.CACHE_LEVEL_L1 if level == 1 else orchestrator_pb2.CACHE_LEVEL_L2
        yield SourcesEvent(list(cached.sources), cache_level, run.spec.variant, current_trace_id())
        run.answer.append(cached.answer)
        yield DeltaEvent(cached.answer, 0)
        yield FinalEvent(common_pb2.Usage(), run.finish(), cached.finish_reason)

    async def _context(self, run: _Run) -> int:
        """The generator's context window (asked once, then remembered)."""
        if self._context_length is None:
            info = await self.components.generator.Info(
                generator_pb2.GeneratorInfoRequest(), timeout=run.deadline.remaining(30.0)
            )
            self._context_length = info.context_length
        return self._context_length


def _numbered(candidates: list[Candidate]) -> list[orchestrator_pb2.Source]:
    sources = []
    for number, candidate in enumerate(candidates, start=1):
        hit = candidate.payload
        sources.append(
            orchestrator_pb2.Source(
                number=number,
                chunk_id=hit.chunk_id,
                document_id=hit.document_id,
                text=hit.text,
                metadata=hit.metadata,
                score=candidate.score,
            )
        )
    return sources


def _annotate(spec: QuerySpec) -> None:
    """Put the query's settings on the server span, where traces are searched by them."""
    span = trace.get_current_span()
    span.set_attribute("ragmesh.collection", spec.collection)
    span.set_attribute("ragmesh.top_k", spec.top_k)
    span.set_attribute("ragmesh.rerank", spec.rerank)
    span.set_attribute("ragmesh.variant", spec.variant)
