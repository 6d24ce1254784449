"""One contract, every backend: the same tests against a real generator process per backend.

transformers and llamacpp load the default SmolLM2-135M-Instruct GGUF; openai talks to a
real ``python -m llama_cpp.server`` on the same GGUF, which one test kills mid-stream and
restarts on the same port. Generations stay a few tokens long
and long streams are cancelled once admitted, so the module stays quick; waits poll
metrics a bounded number of times, no test is bounded by wall-clock time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from ragmesh.mesh.processes import ServiceProcess, health_status
from ragmesh.v1 import common_pb2, generator_pb2, generator_pb2_grpc
from services.common.channels import open_channel
from tests.support.generator_backends import BACKENDS, LlamaServer, generator_process, gguf, llama_server
from tests.support.metrics import scrape, until_metrics, value

pytestmark = pytest.mark.integration
llama_cpp = pytest.importorskip("llama_cpp", reason="the llamacpp extra is not installed")
IN_FLIGHT, WAITING = "ragmesh_generator_sequences_in_flight", "ragmesh_generator_sequences_waiting"
FINISHED = "ragmesh_generator_finished_total"
Stub = Any  # the generated stubs are typed for the synchronous API
SERVERS: dict[str, LlamaServer] = {}
#: The transformers backend runs these in test_generator_real.py already (streamed = unary,
#: admission, cancellation, deadline), against the same session process; not twice.
NEW_BACKENDS = pytest.mark.parametrize("backend_service", ["llamacpp", "openai"], indirect=True)


@pytest.fixture(scope="session", params=BACKENDS)
def backend_service(request: pytest.FixtureRequest, log_dir: Path) -> Iterator[ServiceProcess]:
    """A generator process per backend, once per session (transformers: the shared one)."""
    if request.param == "transformers":
        yield request.getfixturevalue("generator_service")
    elif request.param == "llamacpp":
        with generator_process("llamacpp", log_dir) as service:
            yield service
    else:
        with llama_server(log_dir) as server, generator_process("openai", log_dir, server) as service:
            SERVERS[service.address] = server  # for test_generator_openai's kill test
            yield service


@pytest.fixture
async def stub(backend_service: ServiceProcess) -> AsyncIterator[Stub]:
    channel = open_channel(backend_service.address)
    yield generator_pb2_grpc.GeneratorServiceStub(channel)
    await channel.close(None)


def _request(question: str, **sampling: Any) -> generator_pb2.GenerateRequest:
    return generator_pb2.GenerateRequest(
        messages=[
            common_pb2.ChatMessage(role=common_pb2.ROLE_SYSTEM, content="Answer briefly."),
            common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content=question),
        ],
        sampling=common_pb2.SamplingParams(**sampling),
    )


async def _collect(call: Any) -> tuple[str, generator_pb2.GenerateFinal]:
    parts: list[str] = []
    async for response in call:
        if response.WhichOneof("event") == "delta":
            parts.append(response.delta.text)
        else:
            return "".join(parts), response.final
    raise AssertionError("the stream ended without a final message")


@NEW_BACKENDS
async def test_streamed_deltas_equal_the_unary_text(stub: Stub) -> None:
    request = _request("Name three colours.", max_new_tokens=12)
    streamed, final = await _collect(stub.Generate(request))
    unary = await stub.GenerateText(request)
    assert streamed.strip()
    assert streamed == unary.text  # greedy: the same decoding, whole or streamed
    assert final.usage == unary.final.usage
    assert 0 < final.usage.completion_tokens <= 12
    assert final.usage.prompt_tokens > 10
    assert final.finish_reason in (common_pb2.FINISH_REASON_LENGTH, common_pb2.FINISH_REASON_EOS)


async def test_info_and_token_counts_are_the_models(stub: Stub) -> None:
    info = await stub.Info(generator_pb2.GeneratorInfoRequest())
    assert info.model_name
    assert info.context_length >= 2048
    assert (info.max_batch_size, info.default_max_new_tokens) == (4, 256)
    texts = ["The Zephyrine kettle boils water in ninety seconds.", "Café crème à Zürich 😀"]
    counted = await stub.CountTokens(generator_pb2.CountTokensRequest(texts=texts))
    reference = _gguf_tokenizer().count_tokens(texts)
    assert list(counted.text_tokens) == reference
    chat = await stub.CountTokens(generator_pb2.CountTokensRequest(messages=_request(texts[0]).messages))
    assert chat.prompt_tokens > reference[0] + 6  # the template's markers and the system turn


async def test_bad_input_is_invalid_argument(stub: Stub, backend_service: ServiceProcess) -> None:
    for request in (generator_pb2.GenerateRequest(), _request("Hi", temperature=3.0), _request("Hi", top_p=0.0)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GenerateText(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details()
    assert health_status(backend_service.address) == "SERVING"


@NEW_BACKENDS
async def test_admission_limit_then_cancelling_frees_every_slot(stub: Stub, backend_service: ServiceProcess) -> None:
    port = backend_service.metrics_port
    cancelled_before = value(scrape(port), FINISHED, reason="cancelled")
    # Each process decodes 4 sequences and queues 2 (LIMITS); these would run for long.
    long = [stub.Generate(_request("Write a long poem about kettles.", max_new_tokens=400)) for _ in range(6)]
    firsts = [asyncio.ensure_future(call.read()) for call in long]
    await until_metrics(port, {IN_FLIGHT: 4, WAITING: 2})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(_request("One more?", max_new_tokens=2))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    for call in long:
        call.cancel()
    await asyncio.gather(*firsts, return_exceptions=True)
    await until_metrics(port, {IN_FLIGHT: 0, WAITING: 0})
    await until_metrics(port, {FINISHED: cancelled_before + 6}, reason="cancelled")
    reply = await stub.GenerateText(_request("Say hi.", max_new_tokens=2))  # the slots are free again
    assert reply.final.usage.completion_tokens >= 1


@NEW_BACKENDS
async def test_a_short_deadline_is_deadline_exceeded(stub: Stub, backend_service: ServiceProcess) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _collect(stub.Generate(_request("Write a long poem about kettles.", max_new_tokens=400), timeout=0.5))
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await until_metrics(backend_service.metrics_port, {IN_FLIGHT: 0})


# The openai backend's remote goes away mid-stream and comes back (its session pair).


async def _health_becomes(service: ServiceProcess, wanted: str, polls: int = 300) -> None:
    """Poll the gRPC health (every 50 ms, ``polls`` times) until it reports ``wanted``."""
    seen = ""
    for _ in range(polls):
        seen = await asyncio.to_thread(health_status, service.address)
        if seen == wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"health stayed {seen}, never {wanted}:\n{service.log_tail()}")


@pytest.mark.parametrize("backend_service", ["openai"], indirect=True)
async def test_the_server_going_away_is_unavailable_and_flips_health(backend_service: ServiceProcess) -> None:
    server = SERVERS[backend_service.address]
    channel = open_channel(backend_service.address)
    stub: Stub = generator_pb2_grpc.GeneratorServiceStub(channel)
    try:
        await _killed_mid_stream(stub, server, backend_service)
        # The same port again: the poller notices and the service serves once more.
        server.restart()
        await _health_becomes(backend_service, "SERVING")
        reply = await stub.GenerateText(_request("Say hi.", max_new_tokens=3), timeout=60)
        assert reply.text.strip()
    finally:
        await channel.close(None)


async def _drain(call: Any) -> None:
    """Read a stream to its end; the remaining messages must all be deltas."""
    while (response := await call.read()) is not grpc.aio.EOF:  # type: ignore[attr-defined]
        assert response.WhichOneof("event") == "delta"


async def _killed_mid_stream(stub: Stub, server: LlamaServer, service: ServiceProcess) -> None:
    # A generous deadline: UNAVAILABLE must come from the closed stream, not from the deadline.
    call = stub.Generate(_request("Write a long poem about kettles.", max_new_tokens=1000), timeout=120)
    first = await call.read()
    assert first.WhichOneof("event") == "delta"
    server.kill()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _drain(call)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
    await _health_becomes(service, "NOT_SERVING")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GenerateText(_request("Hello?", max_new_tokens=3), timeout=60)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "unreachable" in (refused.value.details() or "")


_TOKENIZER: list[Any] = []


def _gguf_tokenizer() -> Any:
    """The GGUF's own tokenizer, read vocabulary-only in this process (no weights)."""
    if not _TOKENIZER:
        from services.generator.backends.llamacpp import GGUFTokenizer

        _TOKENIZER.append(GGUFTokenizer(Path(gguf())))
    return _TOKENIZER[0]
