"""JSON views of domain values that more than one transport returns (the documents API, the
MCP tools and resources): a document with its chunks, an ingestion job's progress."""

from __future__ import annotations

from typing import Any

from services.orchestrator.core.documents import DocumentChunks
from services.orchestrator.core.jobs.records import JobRecord


def document_json(collection: str, document: DocumentChunks) -> dict[str, Any]:
    """A document and its chunks in order."""
    chunks = [{"chunk_id": c.chunk_id, "text": c.text, "metadata": dict(c.metadata)} for c in document.chunks]
    return {"collection": collection, "document_id": document.document_id, "source": document.source,
            "chunks": chunks}  # fmt: skip


def job_json(job: JobRecord) -> dict[str, Any]:
    """An ingestion job's state and progress."""
    progress = job.progress
    return {
        "job_id": job.job_id,
        "collection": job.collection,
        "state": job.state.value,
        "documents_total": progress.documents_total,
        "documents_done": progress.documents_done,
        "documents_failed": progress.documents_failed,
        "chunks_done": progress.chunks_done,
        "errors": [{"document_id": e.document_id, "reason": e.reason} for e in progress.errors],
        "error": job.error,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }
