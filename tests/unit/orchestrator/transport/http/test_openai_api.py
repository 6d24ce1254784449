"""The OpenAI-compatible HTTP API over fake ports, served by uvicorn on loopback and called
with the official ``openai`` package (and raw HTTP for the error cases)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator

import httpx
import numpy as np
import openai
import pytest

from ragmesh.vocabulary import FilterOp
from ragmesh.vocabulary.keys import Grant, digest, env_entry
from services.common.auth import AuthSettings, security_interceptor
from services.common.errors import Overloaded, Unavailable
from services.common.quota import QuotaSettings
from services.common.slot import BackendSlot
from services.orchestrator.config import CoreConfig
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Document
from services.orchestrator.core.facade import Orchestrator
from services.orchestrator.core.ingest.state import IngestBatch
from services.orchestrator.core.ports import Ports
from services.orchestrator.transport.http.openai_app import create_app
from services.orchestrator.transport.http.server import HttpServer
from services.orchestrator.wiring import build_core
from tests.support.fake_ports import FakeEmbedder, FakeGenerator, FakeRetriever, bag_of_words

DOCS = [
    Document("envoy", "Envoy listens on port 8080 and balances gRPC calls per request."),
    Document("redis", "Redis holds the shared cache and the collection versions."),
]


class Api:
    """An orchestrator over fake ports behind a real HTTP server."""

    def __init__(self) -> None:
        self.embedder, self.retriever, self.generator = FakeEmbedder(), FakeRetriever(), FakeGenerator()
        ports = Ports(self.embedder, self.retriever, self.generator)
        self.engine = build_core(CoreConfig(), ports=ports)
        slot: BackendSlot[Orchestrator] = BackendSlot("orchestrator")
        slot.set(self.engine)
        self.server = HttpServer(create_app(slot), "127.0.0.1:0")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    served = Api()
    await served.server.start()

    async def batches() -> AsyncIterator[IngestBatch]:
        yield IngestBatch("docs", DOCS)

    async for _ in served.engine.ingest(batches(), Deadline(None)):
        pass
    try:
        yield served
    finally:
        await served.server.stop(grace=5.0)


def _client(api: Api) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{api.url}/v1", api_key="unused", max_retries=0, timeout=30)


async def test_models_list_the_rag_pipeline(api: Api) -> None:
    models = await _client(api).models.list()
    assert [m.id for m in models.data] == ["ragmesh"]


async def test_a_chat_completion_answers_with_its_sources_and_usage(api: Api) -> None:
    completion = await _client(api).chat.completions.create(
        model="ragmesh",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Which port does Envoy use?"},
        ],
        max_tokens=3,
        extra_body={
            "collection": "docs",
            "top_k": 1,
            "filters": [{"field": "document_id", "op": "==", "value": "envoy"}],
        },
    )
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content and completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    sources = completion.model_extra["sources"]  # type: ignore[index]
    assert [s["document_id"] for s in sources] == ["envoy"] and sources[0]["number"] == 1
    assert api.retriever.searches[-1].filters[0].op is FilterOp.EQ


async def test_a_streamed_completion_sends_sources_first_then_text_then_usage(api: Api) -> None:
    stream = await _client(api).chat.completions.create(
        model="ragmesh",
        messages=[{"role": "user", "content": "Which port does Envoy use?"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"collection": "docs", "top_k": 1},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].model_extra["sources"][0]["document_id"] == "envoy"  # type: ignore[index]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == (await _client(api).chat.completions.create(
        model="ragmesh", messages=[{"role": "user", "content": "Which port does Envoy use?"}],
        extra_body={"collection": "docs", "top_k": 1},
    )).choices[0].message.content  # fmt: skip
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


async def test_a_follow_up_in_messages_is_a_conversation(api: Api) -> None:
    completion = await _client(api).chat.completions.create(
        model="ragmesh",
        messages=[
            {"role": "user", "content": "Tell me about Envoy."},
            {"role": "assistant", "content": "It is the proxy."},
            {"role": "user", "content": "Which port does it listen on?"},
        ],
        extra_body={"collection": "docs", "top_k": 1},
    )
    assert completion.model_extra["sources"][0]["document_id"] == "envoy"  # type: ignore[index]
    assert [t.content for t in api.generator.prompts[-1][1:3]] == ["Tell me about Envoy.", "It is the proxy."]


async def test_embeddings_in_float_and_base64_are_the_embedder_vectors(api: Api) -> None:
    client = _client(api)
    floats = await client.embeddings.create(model="ragmesh", input=["Envoy port", "Redis cache"])
    raw = await client.embeddings.create(model="ragmesh", input="Envoy port", encoding_format="base64")
    assert floats.data[0].embedding == pytest.approx(bag_of_words("Envoy port"))
    decoded = np.frombuffer(base64.b64decode(raw.data[0].embedding), dtype=np.float32)  # type: ignore[arg-type]
    assert decoded.tolist() == pytest.approx(floats.data[0].embedding, abs=1e-6)
    assert floats.usage.prompt_tokens == 4


@pytest.mark.parametrize(
    ("path", "body", "status", "param"),
    [
        ("/v1/chat/completions", "not json", 400, None),
        ("/v1/chat/completions", {"messages": []}, 400, "messages"),
        ("/v1/chat/completions", {"messages": [{"role": "tool", "content": "x"}]}, 400, "messages[0].role"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": ""}]}, 400, "messages[0].content"),
        ("/v1/chat/completions", {"messages": [{"role": "assistant", "content": "hi"}]}, 400, "messages"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "q"}], "top_k": "3"}, 400, "top_k"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "q"}], "top_k": 99}, 400, None),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "q"}], "temperature": True}, 400,
         "temperature"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "q"}], "rerank": "best"}, 400, "rerank"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "q"}], "filters": [{"op": "=="}]}, 400,
         "filters[0]"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "q"}], "n": 2}, 400, "n"),
        ("/v1/chat/completions", {"model": "gpt-9", "messages": [{"role": "user", "content": "q"}]}, 404, None),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "q"}], "collection": "nope"}, 404, None),
        ("/v1/embeddings", {"input": []}, 400, "input"),
        ("/v1/embeddings", {"input": "x", "encoding_format": "hex"}, 400, "encoding_format"),
    ],
)  # fmt: skip
async def test_bad_requests_get_openai_errors_with_the_right_status(
    api: Api, path: str, body: object, status: int, param: str | None
) -> None:
    content = body if isinstance(body, str) else json.dumps(body)
    async with httpx.AsyncClient(base_url=api.url) as http:
        response = await http.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"] and error["param"] == param


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [(Overloaded("the generator is full"), 429, "1"), (Unavailable("down"), 503, None)],
)
async def test_overload_and_outages_map_to_429_and_503(
    api: Api, error: Exception, status: int, retry_after: str | None
) -> None:
    api.generator.fail_with = error  # type: ignore[assignment]
    async with httpx.AsyncClient(base_url=api.url) as http:
        body = {"messages": [{"role": "user", "content": "Which port?"}], "collection": "docs", "stream": True}
        response = await http.post("/v1/chat/completions", json=body)
    # the sources were sent before the generator failed: the error arrives inside the stream
    events = [line.removeprefix("data: ") for line in response.text.splitlines() if line.startswith("data: ")]
    assert response.status_code == 200 and events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["type"] == (
        "rate_limit_error" if status == 429 else "service_unavailable_error"
    )
    api.generator.fail_with = None
    api.retriever.fail_with = error  # type: ignore[assignment]
    async with httpx.AsyncClient(base_url=api.url) as http:
        response = await http.post("/v1/chat/completions", json={**body, "stream": False})
    assert response.status_code == status and response.headers.get("retry-after") == retry_after


async def test_a_client_that_disconnects_stops_the_generation(api: Api) -> None:
    api.generator.release = asyncio.Event()
    body = {
        "messages": [{"role": "user", "content": "Which port does Envoy use?"}],
        "collection": "docs",
        "stream": True,
    }
    async with (
        httpx.AsyncClient(base_url=api.url) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        lines = response.aiter_lines()
        first = await anext(lines)
        assert "sources" in first
    # the connection is closed with the generator still waiting to produce its first word
    async with asyncio.timeout(10):
        while api.generator.closed == 0:
            await asyncio.sleep(0.01)
    assert api.generator.finished == 0


async def test_with_auth_a_missing_key_is_401_and_another_tenants_collection_403() -> None:
    key = "rmk_test_key_for_the_http_api"
    grants = env_entry(Grant(digest(key), "acme", ("acme_*",), write=True))
    security = security_interceptor(
        "orchestrator",
        AuthSettings.from_env("orchestrator", {"RAGMESH_ORCHESTRATOR_API_KEYS": grants}),
        QuotaSettings(),
    )
    served = Api()
    slot: BackendSlot[Orchestrator] = BackendSlot("orchestrator")
    slot.set(served.engine)
    served.server = HttpServer(create_app(slot, security), "127.0.0.1:0")
    await served.server.start()
    body = {"messages": [{"role": "user", "content": "Which port?"}], "collection": "docs"}
    try:
        async with httpx.AsyncClient(base_url=served.url) as http:
            missing = await http.post("/v1/chat/completions", json=body)
            wrong = await http.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer nope"})
            other = await http.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"})
            health = await http.get("/v1/health")
    finally:
        await served.server.stop(grace=5.0)
    assert (missing.status_code, wrong.status_code, other.status_code) == (401, 401, 403)
    assert missing.json()["error"]["type"] == "authentication_error" and key not in wrong.text
    assert "may not use collection 'docs'" in other.json()["error"]["message"]
    assert health.status_code == 200  # health needs no key
