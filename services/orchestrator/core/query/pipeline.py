"""The query pipeline: cache → retrieval query → embed → search → rerank → prompt →
generate, as a stream of events (sources first, then answer deltas, then a final message)
that every transport consumes. Every stage is timed and traced; every downstream call
gets the time left of the incoming call. It speaks only domain types, through the ports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import numpy as np
from opentelemetry import trace
from prometheus_client import Counter, Histogram

from ragmesh.vocabulary import CacheLevel, FinishReason, RerankMethod, TextDelta
from ragmesh.vocabulary.citations import attribute, cited_numbers, with_markers
from services.common.errors import FailedPrecondition
from services.common.metrics import LATENCY_BUCKETS
from services.common.tracing import current_trace_id, tracer
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Citation, Event, FinalEvent, Source, SourcesEvent, StageTimings, Usage
from services.orchestrator.core.ports import Ports, SearchQuery
from services.orchestrator.core.query.answer_codec import CachedAnswer, StaleEntry, decode_answer, encode_answer
from services.orchestrator.core.query.cache import AnswerCache, cache_key
from services.orchestrator.core.query.context import prompt_texts
from services.orchestrator.core.query.conversation import retrieval_query
from services.orchestrator.core.query.failover import resumable_generation
from services.orchestrator.core.query.prompt import NO_SOURCES_ANSWER, FittedPrompt, fit, texts_to_count
from services.orchestrator.core.query.rerank import Candidate, Reranker, mmr
from services.orchestrator.core.requests import QuerySpec
from services.orchestrator.core.stores import CollectionVersions

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
_FINISHED = (FinishReason.LENGTH, FinishReason.STOP, FinishReason.EOS)
#: Share of a sentence's content words a source must hold to be cited for it.
CITATION_THRESHOLD = 0.5


@dataclass
class _Run:
    """Per-query bookkeeping: timings and the answer so far."""

    spec: QuerySpec
    deadline: Deadline
    started: float = field(default_factory=time.perf_counter)
    timings: StageTimings = field(default_factory=StageTimings)
    answer: list[str] = field(default_factory=list)
    retrieval_query: str = ""
    history_dropped: int = 0
    #: The sources the answer may cite (set once the prompt is built).
    sources: list[Source] = field(default_factory=list)

    def stage(self, name: str, seconds: float) -> None:
        STAGE_SECONDS.labels(name).observe(seconds)
        setattr(self.timings, f"{name}_ms", getattr(self.timings, f"{name}_ms") + seconds * 1000)

    def final(
        self, usage: Usage, reason: FinishReason, known: tuple[tuple[Citation, ...], bool, str] | None = None
    ) -> FinalEvent:
        """The final event; ``known`` citations (of a cached answer) are not computed again."""
        self.timings.total_ms = (time.perf_counter() - self.started) * 1000
        citations, added, cited = known if known is not None else _citations("".join(self.answer), self.sources)
        return FinalEvent(
            usage, self.timings, reason, self.history_dropped, self.retrieval_query, citations, added, cited
        )


class QueryPipeline:
    """Answers queries with the components (through their ports), the cache and an
    optional cross-encoder."""

    def __init__(
        self, ports: Ports, cache: AnswerCache, versions: CollectionVersions, cross_encoder: Reranker | None
    ) -> None:
        self.ports = ports
        self.cache = cache
        self.versions = versions
        self.cross_encoder = cross_encoder

    async def run(self, spec: QuerySpec, deadline: Deadline) -> AsyncGenerator[Event, None]:
        """The events of one query, sources first."""
        run = _Run(spec, deadline)
        _annotate(spec)
        if spec.rerank == RerankMethod.CROSS_ENCODER and self.cross_encoder is None:
            raise FailedPrecondition(
                "cross-encoder reranking is not configured on this server "
                "(set RAGMESH_ORCHESTRATOR_CROSS_ENCODER_PATH); use NONE or MMR"
            )
        key, hit = await self._lookup(run)
        if hit is not None:
            for event in _replay(run, *hit):
                yield event
            return
        query_vector, candidates = await self._retrieve(run)
        ranked = await self._rerank(run, query_vector, candidates)
        # Nested generators are closed explicitly (aclosing): a caller that leaves mid-answer
        # must stop the generation now, not whenever the garbage collector gets to it.
        async with contextlib.aclosing(self._answer(run, ranked, key)) as events:
            async for event in events:
                yield event

    async def _lookup(self, run: _Run) -> tuple[str, tuple[CacheLevel, CachedAnswer] | None]:
        """The cache key of the query and the cached answer, if any (an unreadable entry is a miss)."""
        spec = run.spec
        started = time.perf_counter()
        with tracer().start_as_current_span("cache.lookup") as span:
            key = cache_key(spec.cache_material(await self.versions.get(spec.collection)))
            found = None if spec.bypass_cache else await self.cache.get(key)
            hit = None
            if found is not None:
                with contextlib.suppress(StaleEntry, ValueError, KeyError, TypeError):
                    hit = found[0], decode_answer(found[1])
            span.set_attribute("ragmesh.cache.level", hit[0].value if hit else CacheLevel.NONE.value)
        run.stage("cache", time.perf_counter() - started)
        return key, hit

    async def _retrieve(self, run: _Run) -> tuple[list[float], list[Candidate]]:
        spec = run.spec
        run.retrieval_query = await retrieval_query(
            spec.query, spec.history, spec.conversation_query, self.ports.generator, run.deadline
        )
        started = time.perf_counter()
        with tracer().start_as_current_span("embed"):
            vector = (await self.ports.embedder.embed([run.retrieval_query], True, run.deadline)).vectors[0]
        run.stage("embed", time.perf_counter() - started)
        started = time.perf_counter()
        with tracer().start_as_current_span("search") as span:
            query = SearchQuery(
                collection=spec.collection,
                vector=vector,
                top_k=spec.candidates,
                filters=spec.filters,
                text=run.retrieval_query,
                mode=spec.search_mode,
                return_vectors=spec.rerank == RerankMethod.MMR,
            )
            hits = await self.ports.retriever.search(query, run.deadline)
            span.set_attribute("ragmesh.candidates", len(hits))
        run.stage("search", time.perf_counter() - started)
        candidates = [
            Candidate(hit, hit.text, np.asarray(hit.vector, dtype=np.float32) if hit.vector else None, hit.score)
            for hit in hits
        ]
        return vector, candidates

    async def _rerank(self, run: _Run, query_vector: list[float], candidates: list[Candidate]) -> list[Candidate]:
        spec = run.spec
        if spec.rerank == RerankMethod.NONE or len(candidates) <= 1:
            return candidates[: spec.top_k]
        started = time.perf_counter()
        with tracer().start_as_current_span("rerank") as span:
            span.set_attribute("ragmesh.rerank", spec.rerank.value)
            if spec.rerank == RerankMethod.MMR:
                ranked = mmr(np.asarray(query_vector, dtype=np.float32), candidates, spec.top_k, spec.mmr_lambda)
            else:
                assert self.cross_encoder is not None  # checked when the query started
                ranked = await self.cross_encoder.rerank(run.retrieval_query, candidates, spec.top_k)
        run.stage("rerank", time.perf_counter() - started)
        return ranked

    async def _answer(self, run: _Run, ranked: list[Candidate], key: str) -> AsyncGenerator[Event, None]:
        spec = run.spec
        if spec.retrieval_only or not ranked:
            sources = _numbered(ranked)
            yield SourcesEvent(sources, CacheLevel.NONE, spec.variant, current_trace_id())
            SOURCES_RETURNED.observe(len(sources))
            if not spec.retrieval_only:
                run.answer.append(NO_SOURCES_ANSWER)
                yield TextDelta(NO_SOURCES_ANSWER, 0)
            yield run.final(Usage(), FinishReason.UNSPECIFIED if spec.retrieval_only else FinishReason.STOP)
            return
        prompt = await self._prompt(run, ranked)
        sources = _numbered([ranked[i] for i in prompt.included])
        run.sources = sources
        SOURCES_RETURNED.observe(len(sources))
        yield SourcesEvent(sources, CacheLevel.NONE, spec.variant, current_trace_id())
        final = None
        async with contextlib.aclosing(self._generate(run, prompt)) as events:
            async for event in events:
                if isinstance(event, FinalEvent):
                    final = event
                yield event
        if final is not None and final.finish_reason in _FINISHED:
            cached = CachedAnswer(
                "".join(run.answer),
                sources,
                final.finish_reason,
                final.citations,
                final.citations_added,
                final.cited_answer,
            )
            await self.cache.put(key, encode_answer(cached))

    async def _prompt(self, run: _Run, ranked: list[Candidate]) -> FittedPrompt:
        spec = run.spec
        started = time.perf_counter()
        with tracer().start_as_current_span("prompt.build") as span:
            texts, usable = prompt_texts(spec, [c.text for c in ranked])
            counted, base = texts_to_count(spec.query, texts, spec.history, spec.prompt_template)
            counts = await self.ports.generator.count_tokens(counted, base, run.deadline)
            context = (await self.ports.generator.facts(run.deadline)).context_length
            max_new = spec.sampling.max_new_tokens or 0
            prompt = fit(
                spec.query,
                texts,
                spec.history,
                counts,
                context_length=context,
                max_new_tokens=max_new,
                template=spec.prompt_template,
            )
            prompt = dataclasses.replace(prompt, included=[usable[i] for i in prompt.included])
            run.history_dropped = prompt.history_dropped
            span.set_attribute("ragmesh.sources", len(prompt.included))
            span.set_attribute("ragmesh.context", spec.context.value)
            span.set_attribute("ragmesh.history.dropped", prompt.history_dropped)
        run.stage("prompt", time.perf_counter() - started)
        return prompt

    async def _generate(self, run: _Run, prompt: FittedPrompt) -> AsyncGenerator[Event, None]:
        started = time.perf_counter()
        first_token = False
        generation = resumable_generation(self.ports.generator, prompt.turns, run.spec.sampling, run.deadline)
        with tracer().start_as_current_span("generate") as span:
            async with contextlib.aclosing(generation):
                async for event in generation:
                    if isinstance(event, TextDelta):
                        if not first_token:
                            first_token = True
                            elapsed = time.perf_counter() - run.started
                            run.timings.first_token_ms = elapsed * 1000
                            TIME_TO_FIRST_TOKEN.observe(elapsed)
                        run.answer.append(event.text)
                        yield TextDelta(event.text, event.tokens)
                    else:
                        span.set_attribute("ragmesh.tokens.completion", event.completion_tokens)
                        LLM_TOKENS.labels("prompt").inc(event.prompt_tokens)
                        LLM_TOKENS.labels("completion").inc(event.completion_tokens)
                        run.stage("generate", time.perf_counter() - started)
                        yield run.final(Usage(event.prompt_tokens, event.completion_tokens), event.finish_reason)


def _replay(run: _Run, level: CacheLevel, cached: CachedAnswer) -> list[Event]:
    """A cached answer, streamed like a fresh one."""
    run.answer.append(cached.text)
    run.sources = cached.sources
    return [
        SourcesEvent(cached.sources, level, run.spec.variant, current_trace_id()),
        TextDelta(cached.text, 0),
        run.final(Usage(), cached.finish_reason, (cached.citations, cached.citations_added, cached.cited_answer)),
    ]


def _citations(text: str, sources: list[Source]) -> tuple[tuple[Citation, ...], bool, str]:
    """Which source supports each sentence of ``text``; when the model wrote no marker,
    also the text with the markers added (citations that do not depend on the model obeying)."""
    if not text or not sources:
        return (), False, ""
    attributions = attribute(text, [s.text for s in sources], CITATION_THRESHOLD)
    citations = tuple(
        Citation(a.sentence.start, a.sentence.end, sources[a.source].number, a.score) for a in attributions
    )
    if cited_numbers(text) or not attributions:
        return citations, False, ""
    return citations, True, with_markers(text, attributions)


def _numbered(candidates: list[Candidate]) -> list[Source]:
    return [
        Source(number, c.payload.chunk_id, c.payload.document_id, c.payload.text, c.payload.metadata, c.score)
        for number, c in enumerate(candidates, start=1)
    ]


def _annotate(spec: QuerySpec) -> None:
    """Put the query's settings on the server span, where traces are searched by them."""
    span = trace.get_current_span()
    span.set_attribute("ragmesh.collection", spec.collection)
    span.set_attribute("ragmesh.top_k", spec.top_k)
    span.set_attribute("ragmesh.rerank", spec.rerank.value)
    span.set_attribute("ragmesh.variant", spec.variant)
    span.set_attribute("ragmesh.history.turns", len(spec.history))
