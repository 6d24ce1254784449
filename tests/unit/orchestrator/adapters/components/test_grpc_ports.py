"""The gRPC adapters keep within the components' request limits and map their errors."""

from __future__ import annotations

from typing import Any, cast

import grpc
import pytest

from ragmesh.v1 import embedder_pb2
from services.common.errors import Overloaded
from services.common.grpc_errors import downstream_error
from services.orchestrator.adapters.components.channels import Components
from services.orchestrator.adapters.components.embedder import TOKENIZE_TEXTS_PER_CALL, GrpcEmbedder
from services.orchestrator.core.deadline import Deadline


class _Embedder:
    """Answers Tokenize with one token per text, and records how many texts each call held."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    async def Tokenize(self, request: embedder_pb2.TokenizeRequest, timeout: float | None) -> Any:
        assert len(request.texts) <= 512, "more texts than the embedder accepts in one request"
        self.sizes.append(len(request.texts))
        return embedder_pb2.TokenizeResponse(
            texts=[embedder_pb2.TokenizedText(token_count=1, starts=[0], ends=[len(t)]) for t in request.texts]
        )


async def test_tokenize_slices_long_lists_within_the_embedders_limit() -> None:
    stub = _Embedder()
    components = cast(Components, type("C", (), {"embedder": stub})())
    texts = [f"text {i}" for i in range(2 * TOKENIZE_TEXTS_PER_CALL + 10)]
    spans = await GrpcEmbedder(components).tokenize(texts, Deadline(None))
    assert stub.sizes == [TOKENIZE_TEXTS_PER_CALL, TOKENIZE_TEXTS_PER_CALL, 10]
    assert [s.ends[0] for s in spans] == [len(t) for t in texts]  # in order


def test_a_downstream_code_becomes_the_matching_domain_error() -> None:
    metadata = grpc.aio.Metadata()
    error = grpc.aio.AioRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, metadata, metadata, "full", None)
    mapped = downstream_error("generator", error)
    assert isinstance(mapped, Overloaded) and mapped.message == "the generator answered RESOURCE_EXHAUSTED: full"
    with pytest.raises(Overloaded):
        raise mapped
