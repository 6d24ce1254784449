"""The generator as a real process with the real default model (SmolLM2-135M-Instruct).

Generations are kept to a few dozen tokens so the module stays quick; nothing here is
bounded by wall-clock time: waits poll metrics a bounded number of times.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from ragmesh.mesh.processes import ServiceProcess, health_status
from ragmesh.v1 import common_pb2, generator_pb2, generator_pb2_grpc
from services.common.channels import open_channel
from services.generator.backends.llamacpp import DEFAULT_SEQUENCE_CONTEXT
from tests.support.metrics import scrape, until_metrics, value

pytestmark = pytest.mark.integration
CONTEXT = (
    "Context: The Zephyrine kettle was designed in 2019 by the engineer Marguerite Okonkwo "
    "in Lyon. It boils water in ninety seconds."
)
IN_FLIGHT, WAITING = "ragmesh_generator_sequences_in_flight", "ragmesh_generator_sequences_waiting"
# The generated stubs are typed for the synchronous API; on an aio channel calls are awaitable.
Stub = Any


@pytest.fixture
async def stub(generator_service: ServiceProcess) -> AsyncIterator[Stub]:
    channel = open_channel(generator_service.address)
    yield generator_pb2_grpc.GeneratorServiceStub(channel)
    await channel.close(None)


def _request(question: str, **sampling: Any) -> generator_pb2.GenerateRequest:
    return generator_pb2.GenerateRequest(
        messages=[
            common_pb2.ChatMessage(role=common_pb2.ROLE_SYSTEM, content="Answer from the context, briefly."),
            common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content=question),
        ],
        sampling=common_pb2.SamplingParams(**sampling),
    )


def _metric(service: ServiceProcess, name: str, **labels: str) -> float:
    return value(scrape(service.metrics_port), name, **labels)


async def _collect(call: Any) -> tuple[str, generator_pb2.GenerateFinal]:
    parts: list[str] = []
    async for response in call:
        if response.WhichOneof("event") == "delta":
            parts.append(response.delta.text)
        else:
            return "".join(parts), response.final
    raise AssertionError("the stream ended without a final message")


async def test_the_answer_comes_from_the_prompt(stub: Stub) -> None:
    reply = await stub.GenerateText(_request(f"{CONTEXT}\n\nQuestion: Who designed the Zephyrine kettle?"))
    assert "Okonkwo" in reply.text
    assert reply.final.finish_reason in (common_pb2.FINISH_REASON_EOS, common_pb2.FINISH_REASON_LENGTH)
    assert reply.final.usage.prompt_tokens > 30


async def test_streamed_deltas_equal_the_unary_text_with_multi_byte_characters(stub: Stub) -> None:
    request = _request(
        "Repeat exactly, then stop: Café crème à Zürich — 東京タワー 😀🎉", max_new_tokens=40, temperature=0.7, seed=42
    )
    streamed, final = await _collect(stub.Generate(request))
    unary = await stub.GenerateText(request)
    assert streamed == unary.text
    assert final.usage == unary.final.usage
    assert "\ufffd" not in streamed
    assert any(ord(character) > 127 for character in streamed)


async def test_four_concurrent_streams_are_decoded_in_shared_batches(
    stub: Stub, generator_service: ServiceProcess
) -> None:
    shared_before = _shared_steps(generator_service)
    questions = ["Who designed the kettle?", "Where was the kettle designed?", "When?", "How fast does it boil?"]
    calls = [stub.Generate(_request(f"{CONTEXT}\n\n{q}", max_new_tokens=24)) for q in questions]
    results = await asyncio.gather(*(_collect(call) for call in calls))
    solo = [await stub.GenerateText(_request(f"{CONTEXT}\n\n{q}", max_new_tokens=24)) for q in questions[:1]]
    for text, final in results:
        assert text.strip()
        assert 0 < final.usage.completion_tokens <= 24
    assert results[0][0] == solo[0].text  # greedy: batching did not change the answer
    assert _shared_steps(generator_service) > shared_before


def _shared_steps(service: ServiceProcess) -> float:
    """Decode steps that carried more than one row, from the batch-size histogram."""
    samples = scrape(service.metrics_port)
    total = value(samples, "ragmesh_generator_batch_size_count")
    single = value(samples, "ragmesh_generator_batch_size_bucket", le="1.0")
    return total - single


async def test_a_cancelled_stream_frees_its_slot_and_others_finish(
    stub: Stub, generator_service: ServiceProcess
) -> None:
    others = [stub.Generate(_request(f"{CONTEXT}\n\nSummarise it.", max_new_tokens=20)) for _ in range(2)]
    doomed = stub.Generate(_request("Write a long poem about kettles.", max_new_tokens=400))
    gathered = asyncio.gather(*(_collect(call) for call in others))
    first = await doomed.read()
    assert first.WhichOneof("event") == "delta"
    cancelled_before = _metric(generator_service, "ragmesh_generator_finished_total", reason="cancelled")
    doomed.cancel()
    for text, final in await gathered:
        assert final.finish_reason in (common_pb2.FINISH_REASON_LENGTH, common_pb2.FINISH_REASON_EOS)
        assert text.strip()
    await until_metrics(generator_service.metrics_port, {IN_FLIGHT: 0})
    after = _metric(generator_service, "ragmesh_generator_finished_total", reason="cancelled")
    assert after == cancelled_before + 1


async def test_a_short_deadline_ends_with_deadline_exceeded(stub: Stub, generator_service: ServiceProcess) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _collect(stub.Generate(_request("Write a long poem about kettles.", max_new_tokens=400), timeout=1.5))
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await until_metrics(generator_service.metrics_port, {IN_FLIGHT: 0})


async def test_admission_beyond_the_limits_is_resource_exhausted(stub: Stub, generator_service: ServiceProcess) -> None:
    # The session's process decodes 4 sequences and queues 2 (GENERATOR_TEST_LIMITS).
    long = [stub.Generate(_request("Write a long poem about kettles.", max_new_tokens=400)) for _ in range(6)]
    firsts = [asyncio.ensure_future(call.read()) for call in long]
    await until_metrics(generator_service.metrics_port, {IN_FLIGHT: 4, WAITING: 2})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(_request("One more?", max_new_tokens=5))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    for call in long:
        call.cancel()
    await asyncio.gather(*firsts, return_exceptions=True)
    await until_metrics(generator_service.metrics_port, {IN_FLIGHT: 0, WAITING: 0})
    assert health_status(generator_service.address) == "SERVING"


async def test_invalid_parameters_are_invalid_argument_and_the_server_keeps_serving(
    stub: Stub, generator_service: ServiceProcess
) -> None:
    for sampling in ({"temperature": 3.0}, {"top_p": 0.0}, {"top_k": 5000}, {"repetition_penalty": 0.1}):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GenerateText(_request("Hi", **sampling))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = await stub.Info(generator_pb2.GeneratorInfoRequest())
    # The default llama.cpp backend gives each sequence slot the default window, not the
    # model's 8192-token training window.
    assert (info.context_length, info.default_max_new_tokens, info.max_new_tokens_limit) == (
        DEFAULT_SEQUENCE_CONTEXT,
        256,
        2048,
    )
    long_prompt = "kettle " * 9000
    counted = await stub.CountTokens(generator_pb2.CountTokensRequest(texts=[long_prompt]))
    assert counted.text_tokens[0] > info.context_length
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(_request(long_prompt, max_new_tokens=10))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"context window of {DEFAULT_SEQUENCE_CONTEXT} tokens" in (caught.value.details() or "")
    assert health_status(generator_service.address) == "SERVING"


async def test_sigterm_lets_a_running_stream_finish_then_exits_0(log_dir: Path) -> None:
    service = ServiceProcess("generator", {"RAGMESH_GENERATOR_DRAIN_SECONDS": "0.2"}, log_dir)
    try:
        service.wait_serving(timeout=600.0)
        async with grpc.aio.insecure_channel(service.address) as channel:
            stub: Stub = generator_pb2_grpc.GeneratorServiceStub(channel)
            call = stub.Generate(_request(f"{CONTEXT}\n\nDescribe the kettle.", max_new_tokens=24))
            first = await call.read()
            assert first.WhichOneof("event") == "delta"
            service.process.send_signal(signal.SIGTERM)
            rest: list[Any] = []
            while (response := await call.read()) is not grpc.aio.EOF:  # type: ignore[attr-defined]
                rest.append(response)
        assert [r.WhichOneof("event") for r in rest][-1] == "final"
        assert rest[-1].final.usage.completion_tokens > 1
    finally:
        code = service.terminate()
    assert code == 0, service.log_tail()
