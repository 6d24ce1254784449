"""The OpenAI-compatible API through Envoy on the whole mesh (`ragmesh up`): the official
``openai`` package, ``curl -N``, bad input, and embeddings equal to EmbedderService's."""

from __future__ import annotations

import json
import shutil
import subprocess

import grpc
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from ragmesh.v1 import embedder_pb2, embedder_pb2_grpc
from tests.support.mesh_cli import UpProcess

pytestmark = pytest.mark.integration
COLLECTION = "ragmesh_docs"  # indexed by `ragmesh up --demo`
QUESTION = "Which port does Envoy listen on?"
BAD_FILTER = {"field": "lang", "op": "==", "value": {"x": 1}}  # a value must be a scalar


def _client(mesh: UpProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://{mesh.address}/v1", api_key="unused", max_retries=0, timeout=300)


def test_openai_client_gets_a_grounded_answer_whole_and_streamed(mesh: UpProcess) -> None:
    client = _client(mesh)
    assert [m.id for m in client.models.list().data] == ["ragmesh"]
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": QUESTION}]
    options = {"collection": COLLECTION, "top_k": 2, "bypass_cache": True}
    whole = client.chat.completions.create(
        model="ragmesh",
        messages=messages,
        max_tokens=12,
        temperature=0,
        extra_body=options,
    )
    assert whole.choices[0].message.content and whole.usage is not None and whole.usage.completion_tokens > 0
    assert whole.model_extra is not None and len(whole.model_extra["sources"]) >= 1
    chunks = list(
        client.chat.completions.create(
            model="ragmesh",
            messages=messages,
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
            extra_body=options,
        )
    )
    assert chunks[0].model_extra is not None and chunks[0].model_extra["sources"]  # sources on the first chunk
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content  # greedy: the same answer
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_streams_server_sent_events(mesh: UpProcess) -> None:
    body = {"model": "ragmesh", "stream": True, "max_tokens": 8, "collection": COLLECTION,
            "messages": [{"role": "user", "content": QUESTION}]}  # fmt: skip
    done = subprocess.run(
        ["curl", "-sN", f"http://{mesh.address}/v1/chat/completions", "-H", "content-type: application/json",
         "-d", json.dumps(body)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    events = [line.removeprefix("data: ") for line in done.stdout.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    first = json.loads(events[0])
    assert first["object"] == "chat.completion.chunk" and first["sources"]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"messages": [{"role": "user", "content": QUESTION}], "collection": "no_such_collection"}, 404, None),
        ({"messages": [{"role": "robot", "content": QUESTION}]}, 400, "messages[0].role"),
        ({"messages": [{"role": "user", "content": QUESTION}], "top_k": 1000}, 400, None),
        ({"messages": [{"role": "user", "content": QUESTION}], "filters": [BAD_FILTER]}, 400, "filters[0].value"),
    ],
)  # fmt: skip
def test_bad_chat_requests_through_envoy_are_openai_errors(
    mesh: UpProcess, body: dict[str, object], status: int, param: str | None
) -> None:
    response = httpx.post(f"http://{mesh.address}/v1/chat/completions", json=body, timeout=120)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param


def test_embeddings_equal_the_embedders_own_vectors(mesh: UpProcess) -> None:
    texts = ["Envoy balances gRPC calls.", "Milvus stores vectors."]
    reply = _client(mesh).embeddings.create(model="ragmesh", input=texts)
    with grpc.insecure_channel(mesh.internal_address) as channel:
        direct = embedder_pb2_grpc.EmbedderServiceStub(channel).Embed(
            embedder_pb2.EmbedRequest(texts=texts, kind=embedder_pb2.EMBED_KIND_DOCUMENT), timeout=60
        )
    for item, embedding in zip(reply.data, direct.embeddings, strict=True):
        assert item.embedding == pytest.approx(list(embedding.values), abs=1e-6)
