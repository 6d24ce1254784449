"""Documents of a collection as their chunks describe them, for ListDocuments.

The orchestrator stores a document's content hash and source in every chunk's metadata;
listing scans the matching chunks (an iterator, so no offset limit) and folds them into
one summary per document id, sorted by id. Pages continue after the last id returned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from services.common.errors import InvalidArgument

MAX_PAGE_SIZE = 10_000
DEFAULT_PAGE_SIZE = 1_000


@dataclass
class DocumentSummary:
    """One stored document: its content hash and source (from metadata) and chunk count."""

    document_id: str
    content_hash: str = ""
    source: str = ""
    chunks: int = 0
    #: The access list of its (first) chunk; empty for a collection without access lists.
    access: tuple[str, ...] = ()


def check_page_size(page_size: int) -> int:
    """The page size to use (0 means the default); InvalidArgument when out of range."""
    if page_size == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE_SIZE} (0 for {DEFAULT_PAGE_SIZE})")
    return page_size


def summarize(
    rows: Iterable[tuple[str, dict[str, Any], tuple[str, ...]]], page_size: int, after: str
) -> tuple[list[DocumentSummary], str]:
    """The first ``page_size`` documents with an id above ``after``, and the next page's
    token ("" when this is the last page)."""
    documents: dict[str, DocumentSummary] = {}
    for document_id, metadata, access in rows:
        if after and document_id <= after:
            continue
        summary = documents.get(document_id)
        if summary is None:
            summary = documents[document_id] = DocumentSummary(
                document_id, str(metadata.get("content_hash", "")), str(metadata.get("source", "")), access=access
            )
        summary.chunks += 1
    ordered = sorted(documents.values(), key=lambda d: d.document_id)
    page = ordered[:page_size]
    token = page[-1].document_id if len(ordered) > page_size else ""
    return page, token
