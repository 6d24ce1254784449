"""Checks on documents to ingest: each bad one is reported with its id and a reason,
and the rest of the batch goes on."""

from __future__ import annotations

from ragmesh.v1 import orchestrator_pb2
from services.common.names import IDENTIFIER

MAX_ID_CHARS = 256
MAX_METADATA_BYTES = 64 * 1024


def document_problem(document: orchestrator_pb2.Document, seen: set[str], max_chars: int) -> str | None:
    """Why ``document`` cannot be indexed, or None when it can (``seen`` holds earlier ids)."""
    problem = _id_problem(document.id, seen)
    if problem is not None:
        return problem
    if not document.text.strip():
        return "document text is empty"
    if len(document.text) > max_chars:
        return f"document text has {len(document.text)} characters; the limit is {max_chars}"
    return _metadata_problem(document)


def _id_problem(document_id: str, seen: set[str]) -> str | None:
    if not document_id.strip():
        return "document id is empty"
    if len(document_id) > MAX_ID_CHARS:
        return f"document id has {len(document_id)} characters; the limit is {MAX_ID_CHARS}"
    if any(ord(ch) < 32 for ch in document_id):
        return "document id contains control characters"
    if document_id in seen:
        return "duplicate document id in this ingestion; only the first one was indexed"
    return None


def _metadata_problem(document: orchestrator_pb2.Document) -> str | None:
    bad_keys = [key for key in document.metadata.fields if not IDENTIFIER.fullmatch(key)]
    if bad_keys:
        return (
            f"metadata key {bad_keys[0][:80]!r} is invalid: use 1-64 letters, digits or underscores, "
            "starting with a letter"
        )
    if "document_id" in document.metadata.fields:
        return "metadata key 'document_id' is reserved"
    if document.metadata.ByteSize() > MAX_METADATA_BYTES:
        return f"metadata is {document.metadata.ByteSize()} bytes; the limit is {MAX_METADATA_BYTES}"
    return None


def label(document: orchestrator_pb2.Document, position: int) -> str:
    """How a document is named in error reports: its id, or its position when it has none."""
    return document.id if document.id.strip() else f"#{position}"
