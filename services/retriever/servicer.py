"""gRPC servicer of the retriever: protobuf in, :class:`Retriever` calls, protobuf out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import grpc

from ragmesh.v1 import common_pb2, retriever_pb2, retriever_pb2_grpc
from ragmesh.vocabulary.protobuf import FILTER_OP_FROM_PROTO, SEARCH_MODE_FROM_PROTO, SEARCH_MODE_PROTO
from ragmesh.vocabulary.values import metadata_dict, metadata_struct, scalar_value
from services.common.errors import InvalidArgument
from services.common.offload import off_loop_if
from services.common.slot import BackendSlot
from services.retriever.backend import ChunkRow, CollectionInfo, Hit, IndexKind, Metric
from services.retriever.engine import Retriever, SearchRequest
from services.retriever.filters import Clause

SERVICE_NAME = retriever_pb2.DESCRIPTOR.services_by_name["RetrieverService"].full_name
Context = grpc.aio.ServicerContext[Any, Any]
_V = TypeVar("_V")
#: Upserts with more chunks than this are translated off the event loop.
_INLINE_CHUNKS = 64

_METRICS: dict[int, Metric] = {
    retriever_pb2.METRIC_UNSPECIFIED: Metric.COSINE,
    retriever_pb2.METRIC_COSINE: Metric.COSINE,
    retriever_pb2.METRIC_IP: Metric.IP,
    retriever_pb2.METRIC_L2: Metric.L2,
}
_METRIC_TO_PB: dict[Metric, retriever_pb2.Metric.ValueType] = {
    Metric.COSINE: retriever_pb2.METRIC_COSINE,
    Metric.IP: retriever_pb2.METRIC_IP,
    Metric.L2: retriever_pb2.METRIC_L2,
}
_INDEXES: dict[retriever_pb2.IndexType.ValueType, IndexKind | None] = {
    retriever_pb2.INDEX_TYPE_UNSPECIFIED: None,
    retriever_pb2.INDEX_TYPE_FLAT: IndexKind.FLAT,
    retriever_pb2.INDEX_TYPE_HNSW: IndexKind.HNSW,
    retriever_pb2.INDEX_TYPE_IVF_FLAT: IndexKind.IVF_FLAT,
}
_INDEX_TO_PB: dict[IndexKind, retriever_pb2.IndexType.ValueType] = {
    kind: number for number, kind in _INDEXES.items() if kind is not None
}


class RetrieverServicer(retriever_pb2_grpc.RetrieverServiceServicer):
    """Translates RetrieverService RPCs to the retriever engine."""

    def __init__(self, retriever: BackendSlot[Retriever]) -> None:
        self.retriever = retriever

    async def CreateCollection(
        self, request: retriever_pb2.CreateCollectionRequest, context: Context
    ) -> retriever_pb2.CreateCollectionResponse:
        metric = _enum(_METRICS, request.metric, "metric")
        index = _enum(_INDEXES, request.index_type, "index_type")
        info, created = await self.retriever.get().create_collection(
            request.name,
            dimension=request.dimension,
            metric=metric,
            index=index,
            full_text=not request.disable_full_text,
            if_not_exists=request.if_not_exists,
        )
        return retriever_pb2.CreateCollectionResponse(collection=_info(info), created=created)

    async def ListCollections(
        self, request: retriever_pb2.ListCollectionsRequest, context: Context
    ) -> retriever_pb2.ListCollectionsResponse:
        infos = await self.retriever.get().list_collections(_clauses(request.filters))
        return retriever_pb2.ListCollectionsResponse(collections=[_info(info) for info in infos])

    async def DescribeCollection(
        self, request: retriever_pb2.DescribeCollectionRequest, context: Context
    ) -> retriever_pb2.DescribeCollectionResponse:
        info = await self.retriever.get().describe(request.name)
        return retriever_pb2.DescribeCollectionResponse(collection=_info(info))

    async def DropCollection(
        self, request: retriever_pb2.DropCollectionRequest, context: Context
    ) -> retriever_pb2.DropCollectionResponse:
        await self.retriever.get().drop(request.name)
        return retriever_pb2.DropCollectionResponse()

    async def Upsert(self, request: retriever_pb2.UpsertRequest, context: Context) -> retriever_pb2.UpsertResponse:
        retriever = self.retriever.get()
        rows = await off_loop_if(len(request.chunks) > _INLINE_CHUNKS, lambda: _rows(request.chunks))
        written = await retriever.upsert(request.collection, rows, _time_left(context))
        return retriever_pb2.UpsertResponse(upserted=written)

    async def Delete(self, request: retriever_pb2.DeleteRequest, context: Context) -> retriever_pb2.DeleteResponse:
        deleted = await self.retriever.get().delete(
            request.collection, list(request.document_ids), _clauses(request.filters), _time_left(context)
        )
        return retriever_pb2.DeleteResponse(deleted=deleted)

    async def Search(self, request: retriever_pb2.SearchRequest, context: Context) -> retriever_pb2.SearchResponse:
        search = SearchRequest(
            collection=request.collection,
            vector=list(request.vector),
            top_k=request.top_k,
            clauses=_clauses(request.filters),
            text=request.query_text,
            mode=_enum(SEARCH_MODE_FROM_PROTO, request.mode, "mode"),
            return_vectors=request.return_vectors,
        )
        hits, mode = await self.retriever.get().search(search, _time_left(context))
        return retriever_pb2.SearchResponse(hits=[_chunk(hit) for hit in hits], mode=SEARCH_MODE_PROTO[mode])

    async def ListDocuments(
        self, request: retriever_pb2.ListDocumentsRequest, context: Context
    ) -> retriever_pb2.ListDocumentsResponse:
        documents, token = await self.retriever.get().list_documents(
            request.collection,
            list(request.document_ids),
            request.page_size,
            request.page_token,
            _time_left(context),
            clauses=_clauses(request.filters),
        )
        return retriever_pb2.ListDocumentsResponse(
            documents=[
                retriever_pb2.DocumentSummary(
                    document_id=d.document_id,
                    content_hash=d.content_hash,
                    source=d.source,
                    chunks=d.chunks,
                    access=list(d.access),
                )
                for d in documents
            ],
            next_page_token=token,
        )

    async def GetChunks(
        self, request: retriever_pb2.GetChunksRequest, context: Context
    ) -> retriever_pb2.GetChunksResponse:
        rows = await self.retriever.get().get_chunks(
            request.collection, request.document_id, _clauses(request.filters), _time_left(context)
        )
        return retriever_pb2.GetChunksResponse(
            chunks=[
                common_pb2.Chunk(
                    chunk_id=r.chunk_id, document_id=r.document_id, text=r.text, metadata=metadata_struct(r.metadata)
                )
                for r in rows
            ]
        )

    async def SetAccess(
        self, request: retriever_pb2.SetAccessRequest, context: Context
    ) -> retriever_pb2.SetAccessResponse:
        updated = await self.retriever.get().set_access(
            request.collection, list(request.document_ids), list(request.access), _time_left(context)
        )
        return retriever_pb2.SetAccessResponse(updated=updated)


def _time_left(context: Context) -> float | None:
    """Seconds left of the caller's deadline (None without one), for the store calls."""
    remaining = context.time_remaining()
    return None if remaining is None else max(remaining, 0.001)


def _enum(table: Mapping[Any, _V], number: int, field: str) -> _V:
    if number not in table:
        raise InvalidArgument(f"unknown {field} {number}")
    return table[number]


def _info(info: CollectionInfo) -> retriever_pb2.CollectionInfo:
    spec = info.spec
    return retriever_pb2.CollectionInfo(
        name=spec.name,
        dimension=spec.dimension,
        metric=_METRIC_TO_PB[spec.metric],
        index_type=_INDEX_TO_PB[spec.index],
        full_text=spec.full_text,
        count=info.count,
        access_lists=spec.access_lists,
    )


def _rows(chunks: Sequence[common_pb2.Chunk]) -> list[ChunkRow]:
    return [
        ChunkRow(
            chunk.chunk_id,
            chunk.document_id,
            chunk.text,
            metadata_dict(chunk.metadata),
            list(chunk.vector),
            tuple(chunk.access),
        )
        for chunk in chunks
    ]


def _chunk(hit: Hit) -> common_pb2.Chunk:
    chunk = common_pb2.Chunk(chunk_id=hit.chunk_id, document_id=hit.document_id, text=hit.text, score=hit.score)
    if hit.metadata:
        chunk.metadata.update(hit.metadata)
    if hit.vector is not None:
        chunk.vector.extend(hit.vector)
    return chunk


def _clauses(filters: Sequence[common_pb2.Filter]) -> list[Clause]:
    return [
        Clause(
            field=f.field,
            op=FILTER_OP_FROM_PROTO.get(f.op),
            value=scalar_value(f.value) if f.HasField("value") else None,
            values=tuple(scalar_value(value) for value in f.values),
        )
        for f in filters
    ]
