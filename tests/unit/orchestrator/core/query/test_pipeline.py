"""The query pipeline over fake ports: cache hits, reranking, context packing, deadlines,
downstream errors, cancelled streams and conversations — no server involved."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ragmesh.vocabulary import CacheLevel, ContextMode, ConversationQuery, FinishReason, RerankMethod, Role, TextDelta
from services.common.errors import DeadlineExceeded, FailedPrecondition, NotFound, Overloaded, Unavailable
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import (
    Answer,
    Document,
    Event,
    FinalEvent,
    QueryInput,
    Sampling,
    Source,
    SourcesEvent,
    StageTimings,
    Turn,
    Usage,
)
from services.orchestrator.core.ingest.state import IngestBatch
from services.orchestrator.core.requests import resolve
from tests.support.fake_ports import Core

DOCS = [
    Document("envoy", "Envoy listens on port 8080 and balances gRPC calls per request."),
    Document("milvus", "Milvus stores the vectors; milvus-lite keeps them in one file."),
    Document("redis", "Redis holds the shared cache and the collection versions."),
    Document("redis2", "Redis holds the shared cache and the collection versions."),
]


async def _ingest(core: Core, documents: list[Document] = DOCS, collection: str = "docs") -> None:
    async def batches() -> AsyncIterator[IngestBatch]:
        yield IngestBatch(collection, documents)

    async for _ in core.ingestor.run(batches(), Deadline(None)):
        pass


async def _ask(core: Core, deadline: Deadline | None = None, **fields: object) -> tuple[Answer, list[Event]]:
    spec = resolve(QueryInput(**{"collection": "docs", **fields}), core.defaults)  # type: ignore[arg-type]
    answer, events = Answer(), list[Event]()
    async for event in core.pipeline.run(spec, deadline or Deadline(None)):
        events.append(event)
        answer.add(event)
    return answer, events


async def test_sources_come_first_then_deltas_then_one_final() -> None:
    core = Core()
    await _ingest(core)
    answer, events = await _ask(core, query="Which port does Envoy listen on?", top_k=2)
    assert isinstance(events[0], SourcesEvent) and isinstance(events[-1], FinalEvent)
    assert all(isinstance(e, TextDelta) for e in events[1:-1]) and len(events) > 2
    assert answer.sources[0].document_id == "envoy" and answer.sources[0].number == 1
    assert answer.finish_reason == FinishReason.EOS and answer.usage.completion_tokens > 0
    assert answer.cache == CacheLevel.NONE and answer.timings.total_ms > 0


async def test_a_repeated_question_is_served_from_l1_and_a_reingest_invalidates_it() -> None:
    core = Core()
    await _ingest(core)
    first, _ = await _ask(core, query="Which port does Envoy listen on?")
    again, _ = await _ask(core, query="  which PORT does envoy listen on? ")
    assert again.cache == CacheLevel.L1 and again.text == first.text and again.sources == first.sources
    assert len(core.generator.prompts) == 1  # the generator ran once
    await _ingest(core, [Document("envoy", "Envoy now listens on port 9090.")])
    fresh, _ = await _ask(core, query="Which port does Envoy listen on?")
    assert fresh.cache == CacheLevel.NONE and len(core.generator.prompts) == 2


async def test_mmr_drops_a_near_duplicate_that_plain_ranking_keeps() -> None:
    core = Core()
    await _ingest(core)
    # Whole chunks: the context budget would leave out a source none of whose sentences match.
    whole = ContextMode.CHUNKS
    plain, _ = await _ask(core, query="What holds the cache in Redis?", top_k=2, bypass_cache=True, context=whole)
    diverse, _ = await _ask(
        core, query="What holds the cache in Redis?", top_k=2, rerank=RerankMethod.MMR, candidates=4, mmr_lambda=0.3,
        context=whole,
    )  # fmt: skip
    assert {s.document_id for s in plain.sources} == {"redis", "redis2"}
    assert len({s.text for s in diverse.sources}) == 2 and diverse.sources[0].document_id.startswith("redis")


async def test_sources_that_do_not_fit_the_context_are_left_out_whole() -> None:
    core = Core()
    core.generator.context_length = 110  # room for the base prompt, the answer and about two sources
    await _ingest(core)
    answer, _ = await _ask(core, query="Redis cache Envoy port Milvus", top_k=4, sampling=Sampling(max_new_tokens=20))
    assert 0 < len(answer.sources) < 4
    prompt = core.generator.prompts[-1][-1].content
    for source in answer.sources:
        assert f"[{source.number}] {source.text}" in prompt


async def test_cross_encoder_without_a_model_is_a_failed_precondition() -> None:
    core = Core()
    await _ingest(core)
    with pytest.raises(FailedPrecondition, match="CROSS_ENCODER_PATH"):
        await _ask(core, query="q", rerank=RerankMethod.CROSS_ENCODER)


async def test_an_unknown_collection_is_not_found_with_a_hint() -> None:
    with pytest.raises(NotFound, match="ingest documents into it first"):
        await _ask(Core(), query="anything")


@pytest.mark.parametrize(
    "error", [Unavailable("the retriever is down"), Overloaded("queue full"), NotFound("no such collection")]
)
async def test_downstream_errors_reach_the_caller_as_domain_errors(error: Exception) -> None:
    core = Core()
    await _ingest(core)
    core.retriever.fail_with = error  # type: ignore[assignment]
    with pytest.raises(type(error), match=str(error)):
        await _ask(core, query="Which port?")


async def test_a_generator_that_is_overloaded_fails_the_query_after_the_sources() -> None:
    core = Core()
    await _ingest(core)
    core.generator.fail_with = Overloaded("the generator's queue is full")
    events: list[object] = []

    async def consume() -> None:
        spec = resolve(QueryInput("Which port?", "docs"), core.defaults)
        async for event in core.pipeline.run(spec, Deadline(None)):
            events.append(event)

    with pytest.raises(Overloaded):
        await consume()
    assert [type(e) for e in events] == [SourcesEvent]


async def test_an_exhausted_deadline_is_deadline_exceeded_before_any_call() -> None:
    core = Core()
    await _ingest(core)
    expired = Deadline(0.001)
    await asyncio.sleep(0.01)
    with pytest.raises(DeadlineExceeded):
        await _ask(core, deadline=expired, query="Which port?")
    assert core.embedder.calls[-1] != ["Which port?"]  # the query was never embedded


async def test_closing_the_stream_early_closes_the_generation_and_caches_nothing() -> None:
    core = Core()
    await _ingest(core)
    core.generator.release = asyncio.Event()
    spec = resolve(QueryInput("Which port does Envoy listen on?", "docs"), core.defaults)
    stream = core.pipeline.run(spec, Deadline(None))
    assert isinstance(await anext(stream), SourcesEvent)
    core.generator.release.set()
    assert isinstance(await anext(stream), TextDelta)
    await stream.aclose()  # the caller went away mid-answer
    assert core.generator.closed == 1 and core.generator.finished == 0
    again, _ = await _ask(core, query="Which port does Envoy listen on?")
    assert again.cache == CacheLevel.NONE


async def test_retrieval_only_returns_sources_without_generating() -> None:
    core = Core()
    await _ingest(core)
    answer, _ = await _ask(core, query="Which port does Envoy listen on?", retrieval_only=True)
    assert answer.sources and answer.text == "" and not core.generator.prompts


async def test_a_follow_up_retrieves_with_the_conversation() -> None:
    core = Core()
    await _ingest(core)
    history = (Turn(Role.USER, "Tell me about Envoy."), Turn(Role.ASSISTANT, "It is the mesh's proxy."))
    alone, _ = await _ask(
        core, query="Which port does it listen on?", top_k=1, conversation_query=ConversationQuery.LAST
    )
    follow_up, _ = await _ask(core, query="Which port does it listen on?", top_k=1, history=history)
    assert follow_up.retrieval_query == "Tell me about Envoy. Which port does it listen on?"
    assert follow_up.sources[0].document_id == "envoy"
    assert alone.retrieval_query == "Which port does it listen on?"
    prompt = core.generator.prompts[-1]
    assert [t.role for t in prompt] == [Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.USER]


async def test_a_rewritten_follow_up_asks_the_generator_for_a_standalone_question() -> None:
    core = Core()
    await _ingest(core)
    core.generator.script = ["Which", "port", "does", "Envoy", "listen", "on?"]
    history = (Turn(Role.USER, "Tell me about Envoy."), Turn(Role.ASSISTANT, "A proxy."))
    answer, _ = await _ask(core, query="And its port?", history=history, conversation_query=ConversationQuery.REWRITE)
    assert answer.retrieval_query == "Which port does Envoy listen on?"
    assert "Last question: And its port?" in core.generator.prompts[0][-1].content


async def test_history_is_trimmed_oldest_first_at_the_context_limit() -> None:
    core = Core()
    core.generator.context_length = 150
    await _ingest(core)
    history = tuple(Turn(Role.USER if i % 2 == 0 else Role.ASSISTANT, f"turn {i} " + "word " * 20) for i in range(6))
    answer, _ = await _ask(core, query="Which port?", history=history, top_k=1, sampling=Sampling(max_new_tokens=10))
    assert 0 < answer.history_turns_dropped < 6
    kept = [t.content for t in core.generator.prompts[-1][1:-1]]
    assert kept == [t.content for t in history[answer.history_turns_dropped :]]  # the newest turns, in order


async def test_the_cache_key_includes_the_history_that_shaped_the_answer() -> None:
    core = Core()
    await _ingest(core)
    await _ask(core, query="Which port?", history=(Turn(Role.USER, "About Envoy."),))
    other, _ = await _ask(core, query="Which port?", history=(Turn(Role.USER, "About Redis."),))
    same, _ = await _ask(core, query="Which port?", history=(Turn(Role.USER, "About Envoy."),))
    assert other.cache == CacheLevel.NONE and same.cache == CacheLevel.L1


async def test_an_unreadable_cache_entry_is_a_miss_answered_again_not_a_crash() -> None:
    core = Core()
    await _ingest(core)
    await _ask(core, query="Which port?")
    assert core.cache.l1 is not None
    for key in list(core.cache.l1):
        core.cache.l1[key] = b"not json"
    answer, _ = await _ask(core, query="Which port?")
    assert answer.cache == CacheLevel.NONE and answer.sources  # answered again, with its sources
    replayed, _ = await _ask(core, query="Which port?")
    assert replayed.cache == CacheLevel.L1 and replayed.sources == answer.sources  # and the entry rewritten


def test_answers_fold_events_in_order() -> None:
    answer = Answer()
    sources = [Source(1, "c", "d", "text", {}, 0.5)]
    answer.add(SourcesEvent(sources, CacheLevel.L2, "control", "trace"))
    answer.add(TextDelta("a", 1))
    answer.add(TextDelta("b", 2))
    final = FinalEvent(Usage(3, 2), StageTimings(total_ms=5.0), FinishReason.EOS, cited_answer="ab [1]")
    answer.add(final)
    assert (answer.text, answer.sources, answer.cache, answer.variant) == ("ab", sources, CacheLevel.L2, "control")
    assert (answer.usage, answer.finish_reason, answer.cited_answer) == (Usage(3, 2), FinishReason.EOS, "ab [1]")


async def test_an_answer_without_markers_gets_them_from_the_sources_it_overlaps() -> None:
    core = Core()
    await _ingest(core)
    core.generator.script = ["Envoy", "listens", "on", "port", "8080."]
    answer, _ = await _ask(core, query="Which port does Envoy listen on?", top_k=2)
    assert answer.citations_added and answer.cited_answer == "Envoy listens on port 8080 [1]."
    assert [(c.start, c.source_number) for c in answer.citations] == [(0, 1)]
    core.generator.script = ["Envoy", "uses", "8080", "[1]."]
    cited, _ = await _ask(core, query="Which port is it?", top_k=2)
    assert not cited.citations_added and cited.cited_answer == ""  # the model cited: nothing added


async def test_a_cache_hit_replays_the_stored_citations_without_computing_them(monkeypatch: pytest.MonkeyPatch) -> None:
    core = Core()
    await _ingest(core)
    core.generator.script = ["Envoy", "listens", "on", "port", "8080."]
    fresh, _ = await _ask(core, query="Which port does Envoy listen on?", top_k=2)

    def not_again(*args: object) -> None:
        raise AssertionError("a cache hit attributed the sentences again")

    monkeypatch.setattr("services.orchestrator.core.query.pipeline.attribute", not_again)
    hit, _ = await _ask(core, query="Which port does Envoy listen on?", top_k=2)
    assert hit.cache == CacheLevel.L1
    assert (hit.citations, hit.citations_added, hit.cited_answer) == (
        fresh.citations,
        fresh.citations_added,
        fresh.cited_answer,
    )
    assert hit.cited_answer == "Envoy listens on port 8080 [1]."
