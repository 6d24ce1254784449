"""The generator engine on a tiny model: streams, stops, cancellation, deadlines, admission."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ragmesh.vocabulary import FinishReason, Role, TextDelta
from services.common.errors import DeadlineExceeded, InvalidArgument, Overloaded
from services.generator.config import GenerationLimits
from services.generator.decoding.lm import ChatTurn
from services.generator.decoding.sequence import Finished
from services.generator.engine import Generator
from services.generator.validation import SamplingRequest
from tests.support.tiny_lm import load_tiny_backend

CHAT = [ChatTurn(Role.SYSTEM, "Be brief."), ChatTurn(Role.USER, "Tell me about the quick brown fox.")]


def _limits(**overrides: float | bool) -> GenerationLimits:
    values: dict[str, float | bool] = {
        "default_max_new_tokens": 16,
        "max_new_tokens_limit": 200,
        "max_batch_size": 4,
        "max_waiting": 2,
        "truncate_prompt": False,
    }
    values.update(overrides)
    return GenerationLimits(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def _running(model_dir: Path, **overrides: float | bool) -> AsyncIterator[Generator]:
    """A started Generator on its own backend, loaded from the session's tiny model."""
    generator = Generator(load_tiny_backend(model_dir), _limits(**overrides))
    await generator.start()
    try:
        yield generator
    finally:
        await generator.close()


@pytest.fixture(scope="module")
async def generator(tiny_model_dir: Path) -> AsyncIterator[Generator]:
    async with _running(tiny_model_dir) as running:
        yield running


async def _until(condition: object, steps: int = 2000) -> None:
    """Yield to the loop until ``condition()`` holds (bounded by count, not by time)."""
    for _ in range(steps):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never held")


async def _stream(generator: Generator, request: SamplingRequest) -> tuple[list[str], Finished]:
    deltas: list[str] = []
    async for event in generator.generate(CHAT, request):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        else:
            return deltas, event
    raise AssertionError("no final event")


async def test_stream_concatenates_to_the_unary_text(generator: Generator) -> None:
    request = SamplingRequest(max_new_tokens=24, temperature=0.8, top_p=0.95, seed=11)
    deltas, streamed_end = await _stream(generator, request)
    text, unary_end = await generator.generate_text(CHAT, request)
    assert "".join(deltas) == text
    assert streamed_end.completion_tokens == unary_end.completion_tokens
    assert streamed_end.prompt_tokens == unary_end.prompt_tokens > 0
    assert streamed_end.reason in (FinishReason.LENGTH, FinishReason.EOS)


async def test_a_stop_sequence_ends_the_text_before_it(generator: Generator) -> None:
    full, _ = await generator.generate_text(CHAT, SamplingRequest(max_new_tokens=40))
    visible = [c for c in full if c.isprintable() and c != "\ufffd"]
    stop = "".join(visible[len(visible) // 2 : len(visible) // 2 + 2])
    assert stop, "the tiny model produced no printable text"
    text, end = await generator.generate_text(CHAT, SamplingRequest(max_new_tokens=40, stop=(stop,)))
    assert end.reason is FinishReason.STOP
    assert full.startswith(text)
    assert stop not in text


async def test_default_and_limits_of_max_new_tokens(generator: Generator) -> None:
    _, end = await generator.generate_text(CHAT, SamplingRequest())
    assert end.completion_tokens <= 16
    with pytest.raises(InvalidArgument, match=r"max_new_tokens is 201; allowed 1 to 200"):
        await generator.generate_text(CHAT, SamplingRequest(max_new_tokens=201))


async def test_a_prompt_over_the_context_window_is_rejected(generator: Generator) -> None:
    long_chat = [ChatTurn(Role.USER, "fox " * 300)]
    with pytest.raises(InvalidArgument, match="context window of 256 tokens"):
        await generator.generate_text(long_chat, SamplingRequest(max_new_tokens=10))


async def test_configured_truncation_is_reported(tiny_model_dir: Path) -> None:
    async with _running(tiny_model_dir, truncate_prompt=True) as truncating:
        _, end = await truncating.generate_text([ChatTurn(Role.USER, "fox " * 300)], SamplingRequest(max_new_tokens=10))
    assert end.truncated_prompt_tokens > 0
    assert end.prompt_tokens == 256 - 10


async def test_concurrent_streams_share_decode_steps(generator: Generator) -> None:
    before = generator.scheduler.shared_steps
    results = await asyncio.gather(*(_stream(generator, SamplingRequest(max_new_tokens=20, seed=i)) for i in range(4)))
    assert all(end.completion_tokens > 0 for _, end in results)
    assert generator.scheduler.shared_steps > before


async def test_requests_sent_together_to_an_idle_batch_are_prefilled_together(tiny_model_dir: Path) -> None:
    async with _running(tiny_model_dir, join_wait_seconds=0.5) as gathering:
        before = gathering.scheduler.prefills
        requests = [SamplingRequest(max_new_tokens=4, seed=i) for i in range(3)]
        await asyncio.gather(*(gathering.generate_text(CHAT, request) for request in requests))
        assert gathering.scheduler.prefills == before + 1


async def test_a_cancelled_stream_leaves_the_batch_and_frees_its_slot(generator: Generator) -> None:
    long = SamplingRequest(max_new_tokens=200, temperature=1.0, seed=3)
    other = asyncio.ensure_future(_stream(generator, SamplingRequest(max_new_tokens=30)))
    events = generator.generate(CHAT, long)
    first = await anext(events)
    assert isinstance(first, (TextDelta, Finished))
    await events.aclose()
    await _until(lambda: generator.scheduler.in_flight <= 1)
    _, end = await other
    assert end.completion_tokens > 0
    await _until(lambda: generator.scheduler.in_flight == 0)


async def test_a_deadline_shorter_than_the_generation_raises(generator: Generator) -> None:
    with pytest.raises(DeadlineExceeded, match="deadline passed"):
        await generator.generate_text(CHAT, SamplingRequest(max_new_tokens=200), time_remaining=0.05)
    await _until(lambda: generator.scheduler.in_flight == 0)


async def test_admission_beyond_batch_and_queue_is_refused_at_once(tiny_model_dir: Path) -> None:
    async with _running(tiny_model_dir, max_batch_size=1, max_waiting=1) as small:
        long = SamplingRequest(max_new_tokens=200, temperature=1.0, seed=1)
        streams = [small.generate(CHAT, long) for _ in range(2)]
        firsts = [asyncio.ensure_future(anext(s)) for s in streams]
        await _until(lambda: small.scheduler.in_flight == 1 and small.scheduler.waiting == 1)
        with pytest.raises(Overloaded, match="retry later"):
            await small.generate_text(CHAT, SamplingRequest(max_new_tokens=5))
        for first, stream in zip(firsts, streams, strict=True):
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await first
            await stream.aclose()
        await _until(lambda: small.scheduler.in_flight == 0 and small.scheduler.waiting == 0)


async def test_count_tokens_of_texts_and_of_a_chat(generator: Generator) -> None:
    counts, prompt = await generator.count_tokens(["hello world", "東京"], CHAT)
    assert len(counts) == 2
    assert all(count > 0 for count in counts)
    _, end = await generator.generate_text(CHAT, SamplingRequest(max_new_tokens=1))
    assert prompt == end.prompt_tokens
    only_texts, no_chat = await generator.count_tokens(["hello world"], [])
    assert only_texts == counts[:1] and no_chat == 0


async def test_count_tokens_with_nothing_to_count_is_invalid(generator: Generator) -> None:
    with pytest.raises(InvalidArgument, match="nothing to count"):
        await generator.count_tokens([], [])


async def test_a_continuation_needs_the_answer_so_far_last(generator: Generator) -> None:
    with pytest.raises(InvalidArgument, match="continue_final_message needs the assistant's answer so far"):
        await generator.generate_text(CHAT, SamplingRequest(), continue_final=True)
