"""The ports implemented over gRPC: stubs, deadlines, error mapping and model facts.

Each adapter turns domain calls into requests, gives every call the time left of the
incoming one, and maps a failed call to a domain error once, here (the pipeline never
sees ``AioRpcError``). Model facts (dimension, context window) are re-read after
``FACTS_TTL_SECONDS``, so a rolling change of model is noticed without a restart.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import grpc

from ragmesh.v1 import common_pb2, embedder_pb2, generator_pb2, retriever_pb2
from ragmesh.vocabulary import FINISH_REASON_FROM_PROTO, SEARCH_MODE_PROTO, FinishReason, TextDelta
from services.common import errors
from services.orchestrator.adapters.components.channels import Components
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import ChunkRecord, Filter, Hit, Sampling, Turn
from services.orchestrator.core.ports import (
    CollectionFacts,
    EmbedderFacts,
    GenerationDone,
    GeneratorFacts,
    Ports,
    SearchQuery,
    StoredDocument,
    TokenCounts,
    TokenSpans,
)
from services.orchestrator.transport.grpc.convert import (
    filter_to_proto,
    metadata_dict,
    metadata_struct,
    sampling_to_proto,
    turns_to_proto,
)

FACTS_TTL_SECONDS = 30.0
#: Bound of a unary call when the incoming call has no deadline.
DEFAULT_TIMEOUT = 30.0
WRITE_TIMEOUT = 120.0
#: Texts per Tokenize call (the embedder's default MAX_TEXTS is 512).
TOKENIZE_TEXTS_PER_CALL = 256
#: Most document ids the retriever takes in one Delete (its filters.MAX_IN_VALUES).
MAX_DELETE_IDS_PER_CALL = 1000
_T = TypeVar("_T")
_CODES: dict[grpc.StatusCode, type[errors.RagmeshError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.Overloaded,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.DeadlineExceeded,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
}


def downstream_error(component: str, error: grpc.aio.AioRpcError) -> errors.RagmeshError:
    """The domain error for a failed call to ``component`` (its code kept, its message prefixed)."""
    kind = _CODES.get(error.code(), errors.Unavailable)
    return kind(f"the {component} answered {error.code().name}: {error.details() or 'no details'}")


async def _call(component: str, call: Callable[[], Awaitable[_T]]) -> _T:
    try:
        return await call()
    except grpc.aio.AioRpcError as error:
        raise downstream_error(component, error) from None


class _Facts(Generic[_T]):
    """A value read from a component and kept for ``FACTS_TTL_SECONDS``."""

    def __init__(self, read: Callable[[Deadline], Awaitable[_T]]) -> None:
        self._read = read
        self._value: _T | None = None
        self._read_at = 0.0

    async def get(self, deadline: Deadline) -> _T:
        if self._value is None or time.monotonic() - self._read_at > FACTS_TTL_SECONDS:
            self._value = await self._read(deadline)
            self._read_at = time.monotonic()
        return self._value


class GrpcEmbedder:
    """EmbedderPort over EmbedderService."""

    def __init__(self, components: Components) -> None:
        self.stub = components.embedder
        self._facts = _Facts(self._read_facts)

    async def embed(self, texts: Sequence[str], query: bool, deadline: Deadline) -> list[list[float]]:
        kind = embedder_pb2.EMBED_KIND_QUERY if query else embedder_pb2.EMBED_KIND_DOCUMENT
        request = embedder_pb2.EmbedRequest(texts=list(texts), kind=kind, truncate=query)
        timeout = deadline.remaining(DEFAULT_TIMEOUT if query else WRITE_TIMEOUT)
        reply = await _call("embedder", lambda: self.stub.Embed(request, timeout=timeout))
        return [list(embedding.values) for embedding in reply.embeddings]

    async def tokenize(self, texts: Sequence[str], deadline: Deadline) -> list[TokenSpans]:
        spans: list[TokenSpans] = []
        # The embedder takes at most MAX_TEXTS texts per request: send longer lists in slices.
        for first in range(0, len(texts), TOKENIZE_TEXTS_PER_CALL):
            spans.extend(await self._tokenize(texts[first : first + TOKENIZE_TEXTS_PER_CALL], deadline))
        return spans

    async def _tokenize(self, texts: Sequence[str], deadline: Deadline) -> list[TokenSpans]:
        request = embedder_pb2.TokenizeRequest(texts=list(texts), return_offsets=True)
        timeout = deadline.remaining(WRITE_TIMEOUT)
        reply = await _call("embedder", lambda: self.stub.Tokenize(request, timeout=timeout))
        return [TokenSpans(text.starts, text.ends) for text in reply.texts]

    async def facts(self, deadline: Deadline) -> EmbedderFacts:
        return await self._facts.get(deadline)

    async def _read_facts(self, deadline: Deadline) -> EmbedderFacts:
        timeout = deadline.remaining(DEFAULT_TIMEOUT)
        info = await _call("embedder", lambda: self.stub.Info(embedder_pb2.EmbedderInfoRequest(), timeout=timeout))
        return EmbedderFacts(info.dimension, info.max_tokens, info.special_tokens, info.metric)


class GrpcRetriever:
    """RetrieverPort over RetrieverService."""

    def __init__(self, components: Components) -> None:
        self.stub = components.retriever

    async def search(self, query: SearchQuery, deadline: Deadline) -> list[Hit]:
        request = retriever_pb2.SearchRequest(
            collection=query.collection,
            vector=list(query.vector),
            top_k=query.top_k,
            filters=[filter_to_proto(f) for f in query.filters],
            query_text=query.text,
            mode=SEARCH_MODE_PROTO[query.mode],
            return_vectors=query.return_vectors,
        )
        timeout = deadline.remaining(DEFAULT_TIMEOUT)
        try:
            reply = await self.stub.Search(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise errors.NotFound(
                    f"collection {query.collection!r} does not exist; ingest documents into it first"
                ) from None
            raise downstream_error("retriever", error) from None
        return [
            Hit(h.chunk_id, h.document_id, h.text, metadata_dict(h.metadata), h.score, h.vector or None)
            for h in reply.hits
        ]

    async def ensure_collection(self, name: str, dimension: int, metric: str, deadline: Deadline) -> None:
        request = retriever_pb2.CreateCollectionRequest(
            name=name,
            dimension=dimension,
            metric=retriever_pb2.METRIC_COSINE if metric == "COSINE" else retriever_pb2.METRIC_IP,
            if_not_exists=True,
        )
        timeout = deadline.remaining(WRITE_TIMEOUT)
        await _call("retriever", lambda: self.stub.CreateCollection(request, timeout=timeout))

    async def upsert(self, collection: str, chunks: Sequence[ChunkRecord], deadline: Deadline) -> None:
        request = retriever_pb2.UpsertRequest(
            collection=collection,
            chunks=[
                common_pb2.Chunk(
                    chunk_id=c.chunk_id,
                    document_id=c.document_id,
                    text=c.text,
                    metadata=metadata_struct(c.metadata),
                    vector=c.vector,
                )
                for c in chunks
            ],
        )
        timeout = deadline.remaining(WRITE_TIMEOUT)
        await _call("retriever", lambda: self.stub.Upsert(request, timeout=timeout))

    async def delete(
        self, collection: str, document_ids: Sequence[str], filters: Sequence[Filter], deadline: Deadline
    ) -> int:
        # The retriever takes at most MAX_DELETE_IDS_PER_CALL ids a call (its MAX_IN_VALUES);
        # the orchestrator's contract allows more, so the ids go in slices.
        ids = list(document_ids)
        slices = [ids[i : i + MAX_DELETE_IDS_PER_CALL] for i in range(0, len(ids), MAX_DELETE_IDS_PER_CALL)] or [[]]
        deleted = 0
        for part in slices:
            deleted += await self._delete(collection, part, filters, deadline)
        return deleted

    async def _delete(
        self, collection: str, document_ids: list[str], filters: Sequence[Filter], deadline: Deadline
    ) -> int:
        request = retriever_pb2.DeleteRequest(
            collection=collection, document_ids=document_ids, filters=[filter_to_proto(f) for f in filters]
        )
        timeout = deadline.remaining(WRITE_TIMEOUT)
        try:
            reply = await self.stub.Delete(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise errors.NotFound(f"collection {collection!r} does not exist") from None
            raise downstream_error("retriever", error) from None
        return int(reply.deleted)

    async def collections(self, deadline: Deadline) -> list[CollectionFacts]:
        timeout = deadline.remaining(DEFAULT_TIMEOUT)
        reply = await _call(
            "retriever", lambda: self.stub.ListCollections(retriever_pb2.ListCollectionsRequest(), timeout=timeout)
        )
        return [CollectionFacts(c.name, c.count, c.dimension, c.full_text) for c in reply.collections]

    async def list_documents(
        self, collection: str, document_ids: Sequence[str], page_size: int, page_token: str, deadline: Deadline
    ) -> tuple[list[StoredDocument], str]:
        request = retriever_pb2.ListDocumentsRequest(
            collection=collection, document_ids=list(document_ids), page_size=page_size, page_token=page_token
        )
        timeout = deadline.remaining(WRITE_TIMEOUT)
        try:
            reply = await self.stub.ListDocuments(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise errors.NotFound(f"collection {collection!r} does not exist") from None
            raise downstream_error("retriever", error) from None
        documents = [StoredDocument(d.document_id, d.content_hash, d.source, d.chunks) for d in reply.documents]
        return documents, reply.next_page_token


class GrpcGenerator:
    """GeneratorPort over GeneratorService."""

    def __init__(self, components: Components) -> None:
        self.stub = components.generator
        self._facts = _Facts(self._read_facts)

    async def generate(
        self, turns: Sequence[Turn], sampling: Sampling, deadline: Deadline
    ) -> AsyncGenerator[TextDelta | GenerationDone, None]:
        request = generator_pb2.GenerateRequest(messages=turns_to_proto(turns), sampling=sampling_to_proto(sampling))
        call = self.stub.Generate(request, timeout=deadline.remaining())
        try:
            async for response in call:
                if response.HasField("delta"):
                    yield TextDelta(response.delta.text, response.delta.tokens)
                else:
                    final = response.final
                    reason = FINISH_REASON_FROM_PROTO.get(final.finish_reason, FinishReason.UNSPECIFIED)
                    yield GenerationDone(reason, final.usage.prompt_tokens, final.usage.completion_tokens)
        except grpc.aio.AioRpcError as error:
            raise downstream_error("generator", error) from None
        finally:
            call.cancel()  # a caller that left stops the generation (no-op when done)

    async def count_tokens(self, texts: Sequence[str], turns: Sequence[Turn], deadline: Deadline) -> TokenCounts:
        request = generator_pb2.CountTokensRequest(texts=list(texts), messages=turns_to_proto(turns))
        timeout = deadline.remaining(DEFAULT_TIMEOUT)
        reply = await _call("generator", lambda: self.stub.CountTokens(request, timeout=timeout))
        return TokenCounts(list(reply.text_tokens), reply.prompt_tokens)

    async def facts(self, deadline: Deadline) -> GeneratorFacts:
        return await self._facts.get(deadline)

    async def _read_facts(self, deadline: Deadline) -> GeneratorFacts:
        timeout = deadline.remaining(DEFAULT_TIMEOUT)
        info = await _call("generator", lambda: self.stub.Info(generator_pb2.GeneratorInfoRequest(), timeout=timeout))
        return GeneratorFacts(info.model_name, info.context_length)


def grpc_ports(components: Components) -> Ports:
    """The three ports over one set of component channels."""
    return Ports(GrpcEmbedder(components), GrpcRetriever(components), GrpcGenerator(components))
