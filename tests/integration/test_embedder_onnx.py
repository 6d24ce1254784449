"""The embedder with the ONNX backend (the default int8 export of MiniLM) as a real gRPC
server process, compared with the session's torch embedder process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from ragmesh.mesh.processes import ServiceProcess
from ragmesh.v1 import embedder_pb2, embedder_pb2_grpc
from services.embedder.config import EmbedderConfig
from services.embedder.onnx_export import prepare_onnx_model
from services.embedder.tokens import EncoderTokens
from tests.support.embedding_eval import compare, cosines, load_eval_set
from tests.support.metrics import scrape, value

pytestmark = pytest.mark.integration
#: An aio EmbedderService stub (the generated stubs type the blocking client only).
Stub = Any

SENTENCES = [
    "The cat sits on the mat.",
    "Quarterly revenue grew by eight percent.",
    "Milvus stores vectors for similarity search.",
    "日本語のテキストも埋め込めます。",
]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory holding the default export, made once here (the service reuses it)."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    config = EmbedderConfig.from_env({"RAGMESH_EMBEDDER_CACHE_DIR": str(cache)})
    prepare_onnx_model(config.model_path, config.pooling, config.normalize, config.onnx)
    return cache


@pytest.fixture(scope="module")
def onnx_service(log_dir: Path, onnx_cache: Path) -> Iterator[ServiceProcess]:
    service = ServiceProcess(
        "embedder", {"RAGMESH_EMBEDDER_BACKEND": "onnx", "RAGMESH_EMBEDDER_CACHE_DIR": str(onnx_cache)}, log_dir
    )
    try:
        service.wait_serving()
        yield service
    finally:
        service.terminate()


@pytest.fixture
async def stubs(embedder_service: ServiceProcess, onnx_service: ServiceProcess) -> AsyncIterator[tuple[Stub, Stub]]:
    """(torch service, ONNX service) stubs."""
    async with (
        grpc.aio.insecure_channel(embedder_service.address) as torch_channel,
        grpc.aio.insecure_channel(onnx_service.address) as onnx_channel,
    ):
        yield (
            embedder_pb2_grpc.EmbedderServiceStub(torch_channel),
            embedder_pb2_grpc.EmbedderServiceStub(onnx_channel),
        )


async def _both(stubs: tuple[Stub, Stub], request: embedder_pb2.EmbedRequest) -> list[embedder_pb2.EmbedResponse]:
    return list(await asyncio.gather(*(stub.Embed(request, timeout=120) for stub in stubs)))


def _vectors(response: embedder_pb2.EmbedResponse) -> np.ndarray:
    return np.array([list(e.values) for e in response.embeddings], dtype=np.float32)


async def test_onnx_vectors_match_torch_and_token_counts_agree(stubs: tuple[Stub, Stub]) -> None:
    torch_response, onnx_response = await _both(stubs, embedder_pb2.EmbedRequest(texts=SENTENCES))
    assert cosines(_vectors(torch_response), _vectors(onnx_response)).min() >= 0.99
    assert np.allclose(np.linalg.norm(_vectors(onnx_response), axis=1), 1.0, atol=1e-4)
    assert list(onnx_response.token_counts) == list(torch_response.token_counts)
    assert onnx_response.dimension == torch_response.dimension == 384


async def test_truncation_agrees_with_torch(stubs: tuple[Stub, Stub]) -> None:
    request = embedder_pb2.EmbedRequest(texts=["short", "word " * 400], truncate=True)
    torch_response, onnx_response = await _both(stubs, request)
    assert list(onnx_response.truncated) == list(torch_response.truncated) == [1]
    assert list(onnx_response.token_counts) == list(torch_response.token_counts)
    assert cosines(_vectors(torch_response), _vectors(onnx_response)).min() >= 0.99
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs[1].Embed(embedder_pb2.EmbedRequest(texts=["word " * 400]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "exceed the model's limit of 254 tokens" in (caught.value.details() or "")


async def test_info_and_tokenize_agree_with_torch(stubs: tuple[Stub, Stub]) -> None:
    torch_info, onnx_info = [await stub.Info(embedder_pb2.EmbedderInfoRequest()) for stub in stubs]
    assert onnx_info == torch_info
    request = embedder_pb2.TokenizeRequest(texts=[*SENTENCES, "Tokenizers split words."], return_offsets=True)
    torch_tokens, onnx_tokens = [await stub.Tokenize(request) for stub in stubs]
    assert onnx_tokens == torch_tokens
    assert onnx_tokens.texts[-1].token_count > 3


async def test_quality_gate_on_the_shipped_evaluation_set(stubs: tuple[Stub, Stub]) -> None:
    config = EmbedderConfig.from_env({})
    # Chunking needs only the tokenizer, which both backends share.
    eval_set = load_eval_set(EncoderTokens(config.model_path, config.model_name, config.pooling, True, 0))
    torch_response, onnx_response = await _both(stubs, embedder_pb2.EmbedRequest(texts=eval_set.texts))
    result = compare(eval_set, _vectors(torch_response), _vectors(onnx_response))
    assert result.texts == len(eval_set.texts) > 30
    assert result.passes(min_cosine=0.99, max_delta=0.005), result


async def test_concurrent_single_text_calls_are_batched(stubs: tuple[Stub, Stub], onnx_service: ServiceProcess) -> None:
    texts = [f"request number {i} asks about topic {i * 7 % 13}" for i in range(32)]
    before = scrape(onnx_service.metrics_port)
    responses = await asyncio.gather(*(stubs[1].Embed(embedder_pb2.EmbedRequest(texts=[t])) for t in texts))
    after = scrape(onnx_service.metrics_port)
    batches = value(after, "ragmesh_embedder_batch_size_count") - value(before, "ragmesh_embedder_batch_size_count")
    assert value(after, "ragmesh_embedder_batch_size_sum") - value(before, "ragmesh_embedder_batch_size_sum") == 32
    assert batches < 32
    assert len({tuple(r.embeddings[0].values[:4]) for r in responses}) == 32  # each caller got its own vector


def test_the_service_loaded_the_cached_export(onnx_service: ServiceProcess, onnx_cache: Path) -> None:
    entries = [entry.name for entry in onnx_cache.iterdir()]
    assert len(entries) == 1 and "-int8-" in entries[0]
    assert "exporting" not in onnx_service.log_path.read_text()
