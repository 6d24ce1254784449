"""The embedder through a real gRPC server process with the real MiniLM model."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ragmesh.mesh.processes import ServiceProcess, health_status
from ragmesh.v1 import embedder_pb2, embedder_pb2_grpc
from services.embedder.config import EmbedderConfig
from services.embedder.model import TransformersEncoder
from tests.support.metrics import scrape, value

pytestmark = pytest.mark.integration

SENTENCES = [
    "The cat sits on the mat.",
    "A kitten is resting on a rug.",
    "Quarterly revenue grew by eight percent.",
    "Milvus stores vectors for similarity search.",
    "日本語のテキストも埋め込めます。",
]


@pytest.fixture(scope="session")
def reference_encoder() -> TransformersEncoder:
    """MiniLM loaded in the test process, to compare the service against."""
    config = EmbedderConfig.from_env({})
    return TransformersEncoder(config.model_path, config.model_name, "auto", True, 0)


@pytest.fixture
async def stub(embedder_service: ServiceProcess) -> AsyncIterator[embedder_pb2_grpc.EmbedderServiceStub]:
    async with grpc.aio.insecure_channel(embedder_service.address) as channel:
        yield embedder_pb2_grpc.EmbedderServiceStub(channel)


def _vectors(response: embedder_pb2.EmbedResponse) -> np.ndarray:
    return np.array([list(e.values) for e in response.embeddings], dtype=np.float32)


async def test_embeddings_match_the_model_in_process(stub: object, reference_encoder: TransformersEncoder) -> None:
    response = await stub.Embed(embedder_pb2.EmbedRequest(texts=SENTENCES))  # type: ignore[attr-defined]
    served = _vectors(response)
    local = reference_encoder.embed_ids(reference_encoder.encode_ids(SENTENCES))
    cosine = (served * local).sum(axis=1) / (np.linalg.norm(served, axis=1) * np.linalg.norm(local, axis=1))
    assert cosine.min() >= 0.999
    assert np.allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-4)
    assert response.dimension == 384
    assert list(response.token_counts) == [s.count for s in reference_encoder.spans(SENTENCES, False)]


async def test_close_sentences_score_higher_than_unrelated_ones(stub: object) -> None:
    response = await stub.Embed(embedder_pb2.EmbedRequest(texts=SENTENCES[:3]))  # type: ignore[attr-defined]
    cat, kitten, revenue = _vectors(response)
    assert float(cat @ kitten) > float(cat @ revenue) + 0.3


async def test_info_and_tokenize_describe_the_model(stub: object) -> None:
    info = await stub.Info(embedder_pb2.EmbedderInfoRequest())  # type: ignore[attr-defined]
    assert (info.model_name, info.dimension, info.max_tokens, info.special_tokens) == ("all-MiniLM-L6-v2", 384, 256, 2)
    assert info.metric == "COSINE"
    text = "Tokenizers split words into pieces."
    tokens = await stub.Tokenize(embedder_pb2.TokenizeRequest(texts=[text], return_offsets=True))  # type: ignore[attr-defined]
    spans = tokens.texts[0]
    assert spans.token_count == len(spans.starts) == len(spans.ends) > 5
    assert text[spans.starts[0] : spans.ends[0]].lower() == "token"
    assert spans.ends[-1] == len(text)


async def test_concurrent_calls_are_batched_and_each_caller_gets_its_own_vector(
    stub: object, embedder_service: ServiceProcess, reference_encoder: TransformersEncoder
) -> None:
    texts = [f"request number {i} asks about topic {i * 7 % 13}" for i in range(64)]
    before = scrape(embedder_service.metrics_port)
    responses = await asyncio.gather(
        *(stub.Embed(embedder_pb2.EmbedRequest(texts=[t], kind=embedder_pb2.EMBED_KIND_QUERY)) for t in texts)  # type: ignore[attr-defined]
    )
    after = scrape(embedder_service.metrics_port)
    batches = value(after, "ragmesh_embedder_batch_size_count") - value(before, "ragmesh_embedder_batch_size_count")
    batched_texts = value(after, "ragmesh_embedder_batch_size_sum") - value(before, "ragmesh_embedder_batch_size_sum")
    assert batched_texts == 64
    assert batches < 64
    local = reference_encoder.embed_ids(reference_encoder.encode_ids(texts))
    for response, expected in zip(responses, local, strict=True):
        assert float(_vectors(response)[0] @ expected) >= 0.999


@pytest.mark.parametrize(
    ("request_kwargs", "message"),
    [
        ({"texts": []}, "texts is empty"),
        ({"texts": ["fine", "  "]}, "empty"),
        ({"texts": ["word " * 400]}, "exceed the model's limit of 254 tokens"),
        ({"texts": ["x"] * 513}, "limit is 512"),
        ({"texts": ["x"], "kind": 9}, "unknown kind"),
    ],
)
async def test_bad_input_is_invalid_argument_and_the_server_stays_serving(
    stub: object, embedder_service: ServiceProcess, request_kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Embed(embedder_pb2.EmbedRequest(**request_kwargs))  # type: ignore[attr-defined, arg-type]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (caught.value.details() or "")
    assert health_status(embedder_service.address, "ragmesh.v1.EmbedderService") == "SERVING"


async def test_truncation_is_explicit_and_reported(stub: object) -> None:
    long_text = "word " * 400
    response = await stub.Embed(embedder_pb2.EmbedRequest(texts=["short", long_text], truncate=True))  # type: ignore[attr-defined]
    assert list(response.truncated) == [1]
    assert response.token_counts[1] == 400


async def test_an_oversized_message_is_refused_by_size(stub: object, embedder_service: ServiceProcess) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Embed(embedder_pb2.EmbedRequest(texts=["y" * (65 * 1024 * 1024)]))  # type: ignore[attr-defined]
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert health_status(embedder_service.address) == "SERVING"


async def test_metrics_count_requests_after_a_call(stub: object, embedder_service: ServiceProcess) -> None:
    await stub.Embed(embedder_pb2.EmbedRequest(texts=["count me"]))  # type: ignore[attr-defined]
    samples = scrape(embedder_service.metrics_port)
    assert value(samples, "ragmesh_rpc_requests_total", component="embedder", method="Embed", code="OK") >= 1
    assert value(samples, "ragmesh_rpc_duration_seconds_count", method="Embed") >= 1


@pytest.fixture
def fresh_embedder(log_dir: Path) -> Iterator[ServiceProcess]:
    """An embedder of its own, for tests that watch start-up and shut it down."""
    service = ServiceProcess(
        "embedder", {"RAGMESH_EMBEDDER_DRAIN_SECONDS": "1", "RAGMESH_EMBEDDER_GRACE_SECONDS": "120"}, log_dir
    )
    yield service
    service.terminate()


async def test_lifecycle_not_serving_then_serving_then_draining_on_sigterm(fresh_embedder: ServiceProcess) -> None:
    async with grpc.aio.insecure_channel(fresh_embedder.address) as channel:
        await asyncio.wait_for(channel.channel_ready(), 60)
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        statuses = [(await watch.read()).status]
        while statuses[-1] != health_pb2.HealthCheckResponse.SERVING:
            statuses.append((await watch.read()).status)
        assert statuses[0] == health_pb2.HealthCheckResponse.NOT_SERVING  # the model was still loading
        # A long call is in flight when SIGTERM arrives: it must still complete.
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
        texts = [f"paragraph {i} " + "about many things " * 30 for i in range(128)]
        in_flight = asyncio.ensure_future(stub.Embed(embedder_pb2.EmbedRequest(texts=texts)))
        await asyncio.sleep(0.3)
        fresh_embedder.process.send_signal(signal.SIGTERM)
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        response = await in_flight
        assert len(response.embeddings) == len(texts)
        watch.cancel()
    assert await asyncio.to_thread(fresh_embedder.process.wait, 60) == 0
