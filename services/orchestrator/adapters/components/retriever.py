"""RetrieverPort over RetrieverService: search, writes and listings, with the retriever's own
limits (from :mod:`ragmesh.vocabulary.limits`) respected by cutting long id lists into calls."""

from __future__ import annotations

from collections.abc import Sequence

from ragmesh.v1 import common_pb2, retriever_pb2
from ragmesh.vocabulary.limits import MAX_IN_VALUES
from ragmesh.vocabulary.protobuf import SEARCH_MODE_PROTO
from ragmesh.vocabulary.values import metadata_dict, metadata_struct
from services.orchestrator.adapters.components.calls import DEFAULT_TIMEOUT, WRITE_TIMEOUT, call
from services.orchestrator.adapters.components.channels import Components
from services.orchestrator.adapters.components.convert import filter_to_proto
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import ChunkRecord, Filter, Hit
from services.orchestrator.core.ports import CollectionFacts, SearchQuery, StoredDocument


def _missing(collection: str) -> str:
    return f"collection {collection!r} does not exist"


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
        missing = _missing(query.collection) + "; ingest documents into it first"
        reply = await call("retriever", lambda: self.stub.Search(request, timeout=timeout), missing)
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
        await call("retriever", lambda: self.stub.CreateCollection(request, timeout=timeout))

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
                    access=list(c.access),
                )
                for c in chunks
            ],
        )
        timeout = deadline.remaining(WRITE_TIMEOUT)
        await call("retriever", lambda: self.stub.Upsert(request, timeout=timeout))

    async def delete(
        self, collection: str, document_ids: Sequence[str], filters: Sequence[Filter], deadline: Deadline
    ) -> int:
        # The retriever takes at most MAX_IN_VALUES ids a call; callers may pass more.
        ids = list(document_ids)
        slices = [ids[i : i + MAX_IN_VALUES] for i in range(0, len(ids), MAX_IN_VALUES)] or [[]]
        clauses = [filter_to_proto(f) for f in filters]
        deleted = 0
        for part in slices:
            request = retriever_pb2.DeleteRequest(collection=collection, document_ids=part, filters=clauses)
            deleted += await self._delete(request, deadline)
        return deleted

    async def _delete(self, request: retriever_pb2.DeleteRequest, deadline: Deadline) -> int:
        timeout = deadline.remaining(WRITE_TIMEOUT)
        missing = _missing(request.collection)
        reply = await call("retriever", lambda: self.stub.Delete(request, timeout=timeout), missing)
        return int(reply.deleted)

    async def collections(self, deadline: Deadline, filters: Sequence[Filter] = ()) -> list[CollectionFacts]:
        timeout = deadline.remaining(DEFAULT_TIMEOUT)
        request = retriever_pb2.ListCollectionsRequest(filters=[filter_to_proto(f) for f in filters])
        reply = await call("retriever", lambda: self.stub.ListCollections(request, timeout=timeout))
        return [CollectionFacts(c.name, c.count, c.dimension, c.full_text) for c in reply.collections]

    async def list_documents(
        self,
        collection: str,
        document_ids: Sequence[str],
        page_size: int,
        page_token: str,
        deadline: Deadline,
        *,
        filters: Sequence[Filter] = (),
    ) -> tuple[list[StoredDocument], str]:
        request = retriever_pb2.ListDocumentsRequest(
            collection=collection,
            document_ids=list(document_ids),
            page_size=page_size,
            page_token=page_token,
            filters=[filter_to_proto(f) for f in filters],
        )
        timeout = deadline.remaining(WRITE_TIMEOUT)
        reply = await call("retriever", lambda: self.stub.ListDocuments(request, timeout=timeout), _missing(collection))
        documents = [
            StoredDocument(d.document_id, d.content_hash, d.source, d.chunks, tuple(d.access)) for d in reply.documents
        ]
        return documents, reply.next_page_token

    async def set_access(
        self, collection: str, document_ids: Sequence[str], access: Sequence[str], deadline: Deadline
    ) -> int:
        updated = 0
        ids = list(document_ids)
        for first in range(0, len(ids), MAX_IN_VALUES):
            request = retriever_pb2.SetAccessRequest(
                collection=collection, document_ids=ids[first : first + MAX_IN_VALUES], access=list(access)
            )
            timeout = deadline.remaining(WRITE_TIMEOUT)
            reply = await call("retriever", lambda: self.stub.SetAccess(request, timeout=timeout), _missing(collection))  # noqa: B023
            updated += int(reply.updated)
        return updated

    async def get_chunks(
        self, collection: str, document_id: str, filters: Sequence[Filter], deadline: Deadline
    ) -> list[Hit]:
        request = retriever_pb2.GetChunksRequest(
            collection=collection, document_id=document_id, filters=[filter_to_proto(f) for f in filters]
        )
        timeout = deadline.remaining(DEFAULT_TIMEOUT)
        reply = await call("retriever", lambda: self.stub.GetChunks(request, timeout=timeout), _missing(collection))
        return [Hit(c.chunk_id, c.document_id, c.text, metadata_dict(c.metadata), 0.0) for c in reply.chunks]
