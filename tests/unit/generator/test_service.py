"""The generator over gRPC, in process, on a tiny model directory: RPCs, status codes, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ragmesh.v1 import common_pb2, generator_pb2, generator_pb2_grpc
from services.common.channels import open_channel
from services.common.server import RunningServer
from services.generator.__main__ import build
from services.generator.config import GeneratorConfig
from tests.support.inprocess import start_in_process

USER = common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content="Tell me about the fox.")


@pytest.fixture(scope="module")
async def served(tiny_model_dir: Path) -> AsyncIterator[tuple[RunningServer, generator_pb2_grpc.GeneratorServiceStub]]:
    config = GeneratorConfig.from_env(
        {
            "RAGMESH_GENERATOR_MODEL_PATH": str(tiny_model_dir),
            "RAGMESH_GENERATOR_BACKEND": "transformers",
            "RAGMESH_GENERATOR_DEFAULT_MAX_NEW_TOKENS": "8",
            "RAGMESH_GENERATOR_MAX_NEW_TOKENS_LIMIT": "64",
        }
    )
    running, address = await start_in_process(build(config))
    channel = open_channel(address)
    yield running, generator_pb2_grpc.GeneratorServiceStub(channel)
    await channel.close(None)
    await running.stop()


async def test_info_reports_model_and_limits(served: Any, tiny_model_dir: Path) -> None:
    _, stub = served
    info = await stub.Info(generator_pb2.GeneratorInfoRequest())
    assert info.model_name == tiny_model_dir.name  # a configured directory is named after itself
    assert info.context_length == 256
    assert (info.default_max_new_tokens, info.max_new_tokens_limit, info.max_batch_size) == (8, 64, 8)


async def test_count_tokens_of_texts_and_messages(served: Any) -> None:
    _, stub = served
    reply = await stub.CountTokens(generator_pb2.CountTokensRequest(texts=["hello", "東京 😀"], messages=[USER]))
    assert len(reply.text_tokens) == 2
    assert min(reply.text_tokens) > 0
    assert reply.prompt_tokens > reply.text_tokens[0]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CountTokens(generator_pb2.CountTokensRequest())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "nothing to count" in (caught.value.details() or "")


async def test_generate_streams_deltas_then_one_final(served: Any) -> None:
    _, stub = served
    request = generator_pb2.GenerateRequest(messages=[USER], sampling=common_pb2.SamplingParams(max_new_tokens=12))
    responses = [r async for r in stub.Generate(request)]
    assert responses[-1].WhichOneof("event") == "final"
    assert all(r.WhichOneof("event") == "delta" for r in responses[:-1])
    final = responses[-1].final
    assert final.finish_reason in (common_pb2.FINISH_REASON_LENGTH, common_pb2.FINISH_REASON_EOS)
    assert 0 < final.usage.completion_tokens <= 12
    unary = await stub.GenerateText(request)
    assert unary.text == "".join(r.delta.text for r in responses[:-1])
    assert unary.final.usage == final.usage


INVALID_SAMPLING = [
    ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"max_new_tokens": 65}, "max_new_tokens"),
    ({"temperature": -0.5}, "temperature"),
    ({"temperature": 2.5}, "temperature"),
    ({"temperature": float("nan")}, "temperature"),
    ({"top_p": 0.0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"top_k": -1}, "top_k"),
    ({"top_k": 1001}, "top_k"),
    ({"repetition_penalty": 0.5}, "repetition_penalty"),
    ({"repetition_penalty": 2.5}, "repetition_penalty"),
    ({"stop": [""]}, "stop"),
    ({"stop": ["x" * 65]}, "stop"),
    ({"stop": [str(i) for i in range(9)]}, "stop"),
]


@pytest.mark.parametrize(("params", "field"), INVALID_SAMPLING)
async def test_every_invalid_sampling_parameter_is_invalid_argument(
    served: Any, params: dict[str, Any], field: str
) -> None:
    running, stub = served
    request = generator_pb2.GenerateRequest(messages=[USER], sampling=common_pb2.SamplingParams(**params))
    for call in (stub.GenerateText(request), _drain(stub.Generate(request))):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"sampling.{field}" in (caught.value.details() or "")
    assert running.health.serving


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([], "messages is empty"),
        ([common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content="  ")], "content is empty"),
        ([common_pb2.ChatMessage(content="no role")], "role is not set"),
        ([common_pb2.ChatMessage(role=common_pb2.Role.ValueType(42), content="odd")], "role is not set"),
        ([USER] * 65, "limit is 64"),
        ([common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content="fox " * 400)], "context window"),
    ],
)
async def test_bad_messages_are_invalid_argument(served: Any, messages: list[Any], expected: str) -> None:
    _, stub = served
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GenerateText(generator_pb2.GenerateRequest(messages=messages))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expected in (caught.value.details() or "")


async def test_health_is_serving_after_warm_up(served: Any) -> None:
    running, _ = served
    assert running.health.serving
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as plain:
        reply = await health_pb2_grpc.HealthStub(plain).Check(
            health_pb2.HealthCheckRequest(service="ragmesh.v1.GeneratorService")
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def _drain(call: Any) -> None:
    async for _ in call:
        pass
