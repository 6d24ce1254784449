"""An answer survives the generator failing mid-stream: the same answer goes on (the text so
far continued, nothing repeated or lost, token counts going on), once; a second failure, or
one before any text, fails the query as before."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ragmesh.vocabulary import FinishReason, Role, TextDelta
from services.common.errors import Unavailable
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Document, FinalEvent, QueryInput, Sampling
from services.orchestrator.core.ingest.state import IngestBatch
from services.orchestrator.core.requests import resolve
from tests.support.fake_ports import Core

SCRIPT = ["Envoy", "listens", "on", "port", "8080", "[1]."]


async def _core() -> Core:
    core = Core()

    async def batches() -> AsyncIterator[IngestBatch]:
        yield IngestBatch("docs", [Document("envoy", "Envoy listens on port 8080.")])

    async for _ in core.ingestor.run(batches(), Deadline(None)):
        pass
    core.generator.script = list(SCRIPT)
    return core


async def _ask(core: Core, **fields: object) -> tuple[list[TextDelta], FinalEvent]:
    spec = resolve(QueryInput("Which port?", "docs", bypass_cache=True, **fields), core.defaults)  # type: ignore[arg-type]
    events = [event async for event in core.pipeline.run(spec, Deadline(30.0))]
    final = events[-1]
    assert isinstance(final, FinalEvent)
    return [e for e in events if isinstance(e, TextDelta)], final


async def test_an_answer_goes_on_after_the_generator_fails_mid_stream() -> None:
    core = await _core()
    core.generator.fail_after = [2]  # the replica dies after "Envoy listens"
    deltas, final = await _ask(core)
    assert "".join(d.text for d in deltas) == "Envoy listens on port 8080 [1]."
    assert [d.tokens for d in deltas] == [1, 2, 3, 4, 5, 6]  # counted on, none twice
    assert final.usage.completion_tokens == 6 and final.finish_reason is FinishReason.EOS
    continuation = core.generator.prompts[-1]
    assert continuation[-1].role is Role.ASSISTANT and continuation[-1].content == "Envoy listens"
    assert core.generator.continued == 1


async def test_the_continuation_gets_only_the_tokens_left() -> None:
    core = await _core()
    core.generator.fail_after = [3]
    deltas, final = await _ask(core, sampling=Sampling(max_new_tokens=4))
    assert "".join(d.text for d in deltas) == "Envoy listens on port" and final.finish_reason is FinishReason.LENGTH


async def test_a_second_failure_or_one_before_any_text_fails_the_query() -> None:
    core = await _core()
    core.generator.fail_after = [2, 1]
    with pytest.raises(Unavailable):
        await _ask(core)
    core.generator.fail_after = [0]
    with pytest.raises(Unavailable):
        await _ask(core)
    assert core.generator.continued == 1  # only the first query resumed
