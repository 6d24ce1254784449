"""The context budget: chunks cut to the sentences that match the question, in their order,
under their source's number, within the budget; and the pipeline prompting with them."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from ragmesh.vocabulary import ContextMode
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Document, QueryInput, SourcesEvent
from services.orchestrator.core.ingest.state import IngestBatch
from services.orchestrator.core.query.context import select_sentences
from services.orchestrator.core.requests import resolve
from tests.support.fake_ports import Core

ENVOY = (
    "Envoy is a proxy written in C++. It was built at Lyft. Envoy listens on port 8080 in the mesh. "
    "The admin interface uses port 9901. Its configuration is YAML."
)
REDIS = "Redis keeps the shared answer cache. It also stores the collection versions. It runs on port 6379."


def test_the_sentences_that_match_the_question_are_kept_in_order() -> None:
    cut = select_sentences("Which port does Envoy listen on?", [ENVOY, REDIS], 60)
    assert cut[0] == "Envoy listens on port 8080 in the mesh."
    wider = select_sentences("Which port does Envoy listen on?", [ENVOY, REDIS], 160)
    assert wider[0].startswith("Envoy is a proxy written in C++.")  # kept sentences stay in their order
    assert "Envoy listens on port 8080 in the mesh. The admin interface uses port 9901." in wider[0]
    assert "Lyft" not in wider[0] and "YAML" not in " ".join(wider)


def test_a_source_with_nothing_that_matters_is_cut_to_nothing_and_the_best_sentence_always_stays() -> None:
    cut = select_sentences("Which port does Envoy listen on?", [ENVOY, "Bananas are yellow. Apples are red."], 60)
    assert cut[1] == "" and "8080" in cut[0]
    assert select_sentences("unrelated words", [ENVOY], 10)[0]  # even over budget, something is kept


def test_the_budget_grows_what_is_kept() -> None:
    small = select_sentences("port", [ENVOY, REDIS], 60)
    large = select_sentences("port", [ENVOY, REDIS], 10_000)
    assert len(" ".join(small)) < len(" ".join(large))
    assert "6379" in " ".join(large) and "9901" in " ".join(large)


async def _ingest(core: Core) -> None:
    async def batches() -> AsyncIterator[IngestBatch]:
        yield IngestBatch("docs", [Document("envoy", ENVOY), Document("redis", REDIS)])

    async for _ in core.ingestor.run(batches(), Deadline(None)):
        pass


async def test_the_pipeline_prompts_with_sentences_and_returns_whole_sources() -> None:
    core = Core()
    await _ingest(core)
    events = []
    spec = resolve(
        QueryInput("Which port does Envoy listen on?", "docs", top_k=2, context=ContextMode.SENTENCES), core.defaults
    )
    async for event in core.pipeline.run(spec, Deadline(None)):
        events.append(event)
    prompt = core.generator.prompts[-1][-1].content
    assert "Envoy listens on port 8080" in prompt and "Lyft" not in prompt
    sources = events[0]
    assert isinstance(sources, SourcesEvent) and sources.sources[0].text == ENVOY  # the caller sees the chunk
    question = QueryInput("Which port does Envoy listen on?", "docs", top_k=2, bypass_cache=True)
    assert resolve(question, core.defaults).context is ContextMode.SENTENCES  # the default
    chunks = resolve(dataclasses.replace(question, context=ContextMode.CHUNKS), core.defaults)
    async for _ in core.pipeline.run(chunks, Deadline(None)):
        pass
    assert "Lyft" in core.generator.prompts[-1][-1].content  # asked for: chunks whole
