"""Reading what a collection holds: its documents a page at a time (optionally those whose id
or source contains some text), and one document's chunks in order. The facade authorizes the
caller first; ``filters`` are the clauses that scope what the caller may see."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.common.errors import InvalidArgument, NotFound
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Filter, Hit
from services.orchestrator.core.ports import RetrieverPort, StoredDocument
from services.orchestrator.core.requests import check_collection

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
#: Documents the retriever lists per call while looking for names that match.
SCAN_PAGE = 1000


@dataclass(frozen=True)
class DocumentChunks:
    """One document: its source and its chunks in order."""

    document_id: str
    source: str
    chunks: list[Hit]


def check_page(page_size: int, name_contains: str) -> int:
    """The page size to use; InvalidArgument naming the field when out of range."""
    if page_size == 0:
        page_size = DEFAULT_PAGE_SIZE
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE_SIZE} (0 for {DEFAULT_PAGE_SIZE})")
    if len(name_contains) > 256:
        raise InvalidArgument(f"name_contains has {len(name_contains)} characters; the limit is 256")
    return page_size


async def list_documents(
    retriever: RetrieverPort,
    collection: str,
    page: tuple[int, str],
    name_contains: str,
    *,
    filters: Sequence[Filter],
    deadline: Deadline,
) -> tuple[list[StoredDocument], str]:
    """One page of ``collection``'s documents sorted by id, and the next page's token; with
    ``name_contains``, only documents whose id or source contains it (case-insensitive)."""
    check_collection(collection)
    page_size, token = check_page(page[0], name_contains), page[1]
    if not name_contains:
        return await retriever.list_documents(collection, (), page_size, token, deadline, filters=filters)
    wanted, found = name_contains.casefold(), []
    while True:
        documents, token = await retriever.list_documents(collection, (), SCAN_PAGE, token, deadline, filters=filters)
        for document in documents:
            if wanted in document.document_id.casefold() or wanted in document.source.casefold():
                found.append(document)
                if len(found) == page_size:
                    more = token or document.document_id != documents[-1].document_id
                    return found, document.document_id if more else ""
        if not token:
            return found, ""


async def get_document(
    retriever: RetrieverPort, collection: str, document_id: str, filters: Sequence[Filter], deadline: Deadline
) -> DocumentChunks:
    """The document's chunks in order; NotFound when it has none the caller may see."""
    check_collection(collection)
    if not document_id.strip():
        raise InvalidArgument("document_id is empty")
    chunks = await retriever.get_chunks(collection, document_id, filters, deadline)
    if not chunks:
        raise NotFound(f"no document {document_id[:200]!r} in collection {collection!r}")
    return DocumentChunks(document_id, str(chunks[0].metadata.get("source", "")), chunks)
