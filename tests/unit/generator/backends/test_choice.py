"""Backend choice, the OpenAI client's error mapping and stream parsing, admission, and
token-count approximations — each piece on its own (the contract tests run real servers).

The OpenAI client is exercised with httpx's own in-memory transport standing in for the
server, so the status codes and malformed streams a real server rarely produces are covered.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ragmesh.vocabulary import Role
from services.common.config import ConfigError
from services.common.errors import InvalidArgument, Overloaded, Unavailable
from services.generator.backends.openai_client import OpenAIClient
from services.generator.backends.remote import Admission
from services.generator.backends.token_counting import ApproximateCounter
from services.generator.config import GeneratorConfig, OpenAISettings
from services.generator.decoding.lm import ChatTurn
from tests.support.inprocess import generic_definition, start_in_process

SETTINGS = OpenAISettings("http://remote.test/v1", "secret", "m", "", 1.0, 1.0)


def test_the_backend_is_chosen_and_checked_at_start(tmp_path: Any) -> None:
    assert GeneratorConfig.from_env({}).backend == "llamacpp"
    with pytest.raises(ConfigError, match="RAGMESH_GENERATOR_BACKEND"):
        GeneratorConfig.from_env({"RAGMESH_GENERATOR_BACKEND": "vllm"})
    with pytest.raises(ConfigError, match=r"RAGMESH_GENERATOR_MODEL_PATH.*\.gguf file"):
        GeneratorConfig.from_env(
            {"RAGMESH_GENERATOR_BACKEND": "llamacpp", "RAGMESH_GENERATOR_MODEL_PATH": str(tmp_path)}
        )
    with pytest.raises(ConfigError, match="RAGMESH_GENERATOR_OPENAI_URL"):
        GeneratorConfig.from_env({"RAGMESH_GENERATOR_BACKEND": "openai"})
    remote = GeneratorConfig.from_env(
        {"RAGMESH_GENERATOR_BACKEND": "openai", "RAGMESH_GENERATOR_OPENAI_URL": "http://gpu:8000/v1/"}
    )
    assert remote.openai is not None
    assert (remote.openai.url, remote.openai.tokenizer, remote.model_path) == ("http://gpu:8000/v1", "", "")


def _client(handler: Any) -> OpenAIClient:
    client = OpenAIClient(SETTINGS)
    client._http = httpx.AsyncClient(base_url=SETTINGS.url, transport=httpx.MockTransport(handler))
    return client


async def _stream(client: OpenAIClient) -> list[str]:
    async with client.chat({"messages": []}) as chunks:
        return [chunk.text async for chunk in chunks if chunk.text]


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [(400, InvalidArgument, "max_tokens too large"), (429, Overloaded, "429"), (503, Unavailable, "503")],
)
async def test_remote_statuses_become_domain_errors(status: int, error: type[Exception], words: str) -> None:
    body = {"error": {"message": "max_tokens too large", "type": "invalid_request_error"}}
    client = _client(lambda request: httpx.Response(status, json=body))
    with pytest.raises(error, match=words):
        await _stream(client)


async def test_a_refused_connection_and_a_truncated_stream_are_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(Unavailable, match="unreachable"):
        await _stream(_client(refuse))
    cut = "data: " + json.dumps({"choices": [{"delta": {"content": "Hel"}}]}) + "\n\n"
    with pytest.raises(Unavailable, match="without \\[DONE\\]"):
        await _stream(_client(lambda request: httpx.Response(200, text=cut)))
    with pytest.raises(Unavailable, match="mid-stream"):
        await _stream(_client(lambda request: httpx.Response(200, text='data: {"error": "boom"}\n\n')))


async def test_the_stream_yields_deltas_usage_and_sends_the_key() -> None:
    seen: list[httpx.Request] = []
    events = [
        {"choices": [{"delta": {"role": "assistant"}}]},
        {"choices": [{"delta": {"content": "Hel"}}]},
        {"choices": [{"delta": {"content": "lo"}, "finish_reason": "length"}]},
        {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}},
    ]
    text = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text=text)

    client = _client(handler)
    client._http.headers["Authorization"] = "Bearer secret"
    async with client.chat({"messages": []}) as chunks:
        got = [chunk async for chunk in chunks]
    assert "".join(c.text for c in got) == "Hello"
    assert [c.finish_reason for c in got if c.finish_reason] == ["length"]
    assert (got[-1].prompt_tokens, got[-1].completion_tokens) == (9, 2)
    assert json.loads(seen[0].content)["stream"] is True
    assert seen[0].headers["Authorization"] == "Bearer secret"


async def test_admission_refuses_beyond_active_plus_waiting() -> None:
    admission = Admission(active=1, waiting=1)
    release = asyncio.Event()
    entered = asyncio.Event()

    async def hold() -> None:
        async with admission.slot():
            entered.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.wait_for(entered.wait(), 5)
    waiter = asyncio.create_task(hold())
    for _ in range(100):  # until the second caller queues
        if admission.waiting == 1:
            break
        await asyncio.sleep(0)
    with pytest.raises(Overloaded, match="1 generations streaming and 1 waiting"):
        async with admission.slot():
            pass
    release.set()
    await asyncio.wait_for(asyncio.gather(holder, waiter), 5)
    assert (admission.active, admission.waiting) == (0, 0)


def test_the_approximation_counts_bytes_and_messages() -> None:
    counter = ApproximateCounter()
    assert counter.count_tokens(["abcd", "abcde", "", "é"]) == [1, 2, 0, 1]
    assert counter.prompt_tokens([ChatTurn(Role.USER, "abcdefgh")]) == 2 + 4
    assert not counter.exact


async def test_readiness_drives_health_after_start_and_stops_at_shutdown() -> None:
    changes: asyncio.Queue[bool] = asyncio.Queue()

    async def readiness() -> AsyncIterator[bool]:
        while True:
            yield await changes.get()

    definition = generic_definition("generator", "test.Ready", {})
    definition.readiness = readiness
    running, _ = await start_in_process(definition)
    try:
        assert not running.health.serving  # nothing reported yet: still NOT_SERVING
        for ready in (True, False, True):
            changes.put_nowait(ready)
            for _ in range(100):
                if running.health.serving == ready:
                    break
                await asyncio.sleep(0.01)
            assert running.health.serving == ready
    finally:
        await running.stop()
    changes.put_nowait(True)
    await asyncio.sleep(0)
    assert not running.health.serving
