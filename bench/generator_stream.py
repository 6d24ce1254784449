"""What both generator benchmarks (transformers and llama.cpp) send the service: one prompt,
greedy decoding of ``NEW_TOKENS`` tokens, streamed; the service's total rate over N streams."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc

from ragmesh.v1 import common_pb2, generator_pb2, generator_pb2_grpc
from services.generator.backends.llamacpp import default_threads
from services.generator.config import GeneratorConfig

NEW_TOKENS = 128
PROMPT = "Write a short story about a robot who learns to paint."


async def _stream(stub: Any) -> tuple[int, float]:
    """(completion tokens, client-side seconds to the first delta) of one stream."""
    request = generator_pb2.GenerateRequest(
        messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content=PROMPT)],
        sampling=common_pb2.SamplingParams(max_new_tokens=NEW_TOKENS, temperature=0.0),
    )
    start = time.perf_counter()
    first = 0.0
    async for response in stub.Generate(request):
        if response.WhichOneof("event") == "delta" and not first:
            first = time.perf_counter() - start
        elif response.WhichOneof("event") == "final":
            return response.final.usage.completion_tokens, first
    raise RuntimeError("stream ended without a final message")


async def service_rate(address: str, streams: int) -> tuple[float, list[float]]:
    """Total tokens per second of ``streams`` concurrent streams, and their TTFTs."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub: Any = generator_pb2_grpc.GeneratorServiceStub(channel)  # typed sync; awaitable on aio
        start = time.perf_counter()
        results = await asyncio.gather(*(_stream(stub) for _ in range(streams)))
        elapsed = time.perf_counter() - start
    return sum(tokens for tokens, _ in results) / elapsed, [ttft for _, ttft in results]


def llamacpp_threads() -> int:
    """The decode threads of a llama.cpp generator started from this environment: its
    RAGMESH_GENERATOR_LLAMACPP_THREADS, or the backend's default (half the cores)."""
    return GeneratorConfig.from_env().llamacpp_threads or default_threads()
