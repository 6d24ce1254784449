"""The openai backend against a real OpenAI-compatible server that goes away and comes back.

The server is ``python -m llama_cpp.server`` (the ``llamacpp`` extra) on the default GGUF,
with its own generator process: killing it must not disturb the contract tests' pair.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest

from ragmesh.mesh.processes import ServiceProcess, health_status
from ragmesh.v1 import common_pb2, generator_pb2, generator_pb2_grpc
from services.common.channels import open_channel
from tests.support.generator_backends import LlamaServer, generator_process

pytestmark = pytest.mark.integration
pytest.importorskip("llama_cpp.server", reason="the llamacpp extra is not installed")
Stub = Any


def _request(question: str, **sampling: Any) -> generator_pb2.GenerateRequest:
    return generator_pb2.GenerateRequest(
        messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content=question)],
        sampling=common_pb2.SamplingParams(**sampling),
    )


async def _health_becomes(service: ServiceProcess, wanted: str, polls: int = 300) -> None:
    """Poll the gRPC health (every 50 ms, ``polls`` times) until it reports ``wanted``."""
    seen = ""
    for _ in range(polls):
        seen = await asyncio.to_thread(health_status, service.address)
        if seen == wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"health stayed {seen}, never {wanted}:\n{service.log_tail()}")


async def test_the_server_going_away_is_unavailable_and_flips_health(log_dir: Path) -> None:
    server = LlamaServer(log_dir)
    try:
        server.wait_ready()
        with generator_process("openai", log_dir, server) as service:
            channel = open_channel(service.address)
            stub: Stub = generator_pb2_grpc.GeneratorServiceStub(channel)
            try:
                await _killed_mid_stream(stub, server, service)
                # The same port again: the poller notices and the service serves once more.
                server = LlamaServer(log_dir, port=server.port)
                server.wait_ready()
                await _health_becomes(service, "SERVING")
                reply = await stub.GenerateText(_request("Say hi.", max_new_tokens=3), timeout=60)
                assert reply.text.strip()
            finally:
                await channel.close(None)
    finally:
        server.stop()


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
