"""A collection's documents, and one document's chunks, as the contract's messages."""

from __future__ import annotations

from collections.abc import Sequence

from ragmesh.v1 import orchestrator_pb2
from ragmesh.vocabulary.values import metadata_struct
from services.orchestrator.core.documents import DocumentChunks
from services.orchestrator.core.ports import StoredDocument


def documents_message(
    documents: Sequence[StoredDocument], token: str
) -> orchestrator_pb2.OrchestratorServiceListDocumentsResponse:
    """The ListDocuments response."""
    return orchestrator_pb2.OrchestratorServiceListDocumentsResponse(
        documents=[
            orchestrator_pb2.StoredDocument(
                document_id=d.document_id,
                source=d.source,
                chunks=d.chunks,
                content_hash=d.content_hash,
                access=list(d.access),
            )
            for d in documents
        ],
        next_page_token=token,
    )


def document_message(document: DocumentChunks) -> orchestrator_pb2.GetDocumentResponse:
    """The GetDocument response."""
    return orchestrator_pb2.GetDocumentResponse(
        document_id=document.document_id,
        source=document.source,
        chunks=[
            orchestrator_pb2.DocumentChunk(chunk_id=c.chunk_id, text=c.text, metadata=metadata_struct(c.metadata))
            for c in document.chunks
        ],
    )
