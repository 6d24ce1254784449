"""Checks on documents to ingest: each bad one is reported with its id and a reason,
and the rest of the batch goes on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ragmesh.vocabulary.access import AccessError, access_list
from ragmesh.vocabulary.limits import ID_BYTES, METADATA_BYTES
from ragmesh.vocabulary.names import IDENTIFIER
from services.orchestrator.core.domain import Document

MAX_ID_CHARS = 256
#: Ids are checked against the retriever's byte limit too: 256 characters of 4-byte UTF-8
#: would pass MAX_ID_CHARS and be refused a hop later.
MAX_METADATA_DEPTH = 8
#: Metadata keys the orchestrator sets itself.
RESERVED_KEYS = ("document_id", "content_hash")
MAX_FILE_NAME_CHARS = 1024


def document_problem(document: Document, seen: set[str], max_chars: int) -> str | None:
    """Why ``document`` cannot be indexed, or None when it can (``seen`` holds earlier ids)."""
    problem = _id_problem(document.id, seen) or access_problem(document.access)
    if problem is not None:
        return problem
    if document.content:
        return _content_problem(document) or metadata_problem(document.metadata)
    if not document.text.strip():
        return "document text is empty"
    if len(document.text) > max_chars:
        return f"document text has {len(document.text)} characters; the limit is {max_chars}"
    return metadata_problem(document.metadata)


def access_problem(access: tuple[str, ...]) -> str | None:
    """Why an access list cannot be stored, or None."""
    try:
        access_list(access)
    except AccessError as error:
        return f"access: {error}"
    return None


def _content_problem(document: Document) -> str | None:
    """Raw content is parsed by the server (its size is bounded by the parser's limits)."""
    if document.text:
        return "give the document's text or its raw content, not both"
    if len(document.file_name) > MAX_FILE_NAME_CHARS:
        return f"file name has {len(document.file_name)} characters; the limit is {MAX_FILE_NAME_CHARS}"
    if any(ord(ch) < 32 for ch in document.file_name):
        return "file name contains control characters"
    return None


def _id_problem(document_id: str, seen: set[str]) -> str | None:
    if not document_id.strip():
        return "document id is empty"
    if len(document_id) > MAX_ID_CHARS:
        return f"document id has {len(document_id)} characters; the limit is {MAX_ID_CHARS}"
    if len(document_id.encode()) > ID_BYTES:
        return f"document id is {len(document_id.encode())} bytes of UTF-8; the limit is {ID_BYTES} bytes"
    if any(ord(ch) < 32 for ch in document_id):
        return "document id contains control characters"
    if document_id in seen:
        return "duplicate document id in this ingestion; only the first one was indexed"
    return None


def metadata_problem(metadata: Mapping[str, Any]) -> str | None:
    """Why ``metadata`` cannot be stored with a chunk, or None."""
    bad_keys = [key for key in metadata if not IDENTIFIER.fullmatch(key)]
    if bad_keys:
        return (
            f"metadata key {bad_keys[0][:80]!r} is invalid: use 1-64 letters, digits or underscores, "
            "starting with a letter"
        )
    reserved = [key for key in RESERVED_KEYS if key in metadata]
    if reserved:
        return f"metadata key {reserved[0]!r} is reserved"
    if _depth(metadata) > MAX_METADATA_DEPTH:
        return f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels"
    try:
        size = len(json.dumps(metadata, ensure_ascii=False, allow_nan=False).encode())
    except ValueError:
        return "metadata holds NaN or infinity, which JSON cannot store"
    if size > METADATA_BYTES:
        return f"metadata is {size} bytes as JSON; the limit is {METADATA_BYTES}"
    return None


def _depth(value: Any) -> int:
    if isinstance(value, Mapping):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def label(document: Document, position: int) -> str:
    """How a document is named in error reports: its id, or its position when it has none."""
    return document.id if document.id.strip() else f"#{position}"
