"""gRPC servicer of the embedder: protobuf in, :class:`Embedder` calls, protobuf out."""

from __future__ import annotations

from typing import Any

import grpc

from ragmesh.v1 import embedder_pb2, embedder_pb2_grpc
from services.common.errors import InvalidArgument
from services.common.slot import BackendSlot
from services.embedder.engine import Embedder, Kind

_KINDS = {
    embedder_pb2.EMBED_KIND_UNSPECIFIED: Kind.DOCUMENT,
    embedder_pb2.EMBED_KIND_DOCUMENT: Kind.DOCUMENT,
    embedder_pb2.EMBED_KIND_QUERY: Kind.QUERY,
}
SERVICE_NAME = embedder_pb2.DESCRIPTOR.services_by_name["EmbedderService"].full_name
Context = grpc.aio.ServicerContext[Any, Any]


class EmbedderServicer(embedder_pb2_grpc.EmbedderServiceServicer):
    """Translates EmbedderService RPCs to the embedder engine."""

    def __init__(self, embedder: BackendSlot[Embedder]) -> None:
        self.embedder = embedder

    async def Embed(self, request: embedder_pb2.EmbedRequest, context: Context) -> embedder_pb2.EmbedResponse:
        kind = _KINDS.get(request.kind)
        if kind is None:
            raise InvalidArgument(f"unknown kind {request.kind}; use EMBED_KIND_QUERY or EMBED_KIND_DOCUMENT")
        result = await self.embedder.get().embed(list(request.texts), kind, request.truncate)
        return embedder_pb2.EmbedResponse(
            embeddings=[embedder_pb2.Embedding(values=row) for row in result.vectors.tolist()],
            dimension=result.vectors.shape[1],
            truncated=result.truncated,
            token_counts=result.token_counts,
        )

    async def Info(
        self, request: embedder_pb2.EmbedderInfoRequest, context: Context
    ) -> embedder_pb2.EmbedderInfoResponse:
        embedder = self.embedder.get()
        info = embedder.backend.info
        return embedder_pb2.EmbedderInfoResponse(
            model_name=info.model_name,
            dimension=info.dimension,
            max_tokens=info.max_tokens,
            normalized=info.normalized,
            metric="COSINE" if info.normalized else "IP",
            pooling=info.pooling,
            max_texts=embedder.limits.max_texts,
            special_tokens=info.special_tokens,
        )

    async def Tokenize(self, request: embedder_pb2.TokenizeRequest, context: Context) -> embedder_pb2.TokenizeResponse:
        spans = await self.embedder.get().tokenize(list(request.texts), request.return_offsets)
        return embedder_pb2.TokenizeResponse(
            texts=[embedder_pb2.TokenizedText(token_count=s.count, starts=s.starts, ends=s.ends) for s in spans]
        )
