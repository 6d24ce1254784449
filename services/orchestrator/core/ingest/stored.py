"""What ingestion reads of the stored documents: their content hashes (to skip unchanged
documents) and, for a sync, the documents whose files are gone."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from ragmesh.vocabulary.limits import MAX_IN_VALUES
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.ports import RetrieverPort, StoredDocument

#: Ids per ListDocuments call (the retriever's limit for an id list).


async def _all_pages(
    retriever: RetrieverPort, collection: str, document_ids: Sequence[str], deadline: Deadline
) -> list[StoredDocument]:
    documents: list[StoredDocument] = []
    token = ""
    while True:
        page, token = await retriever.list_documents(collection, document_ids, MAX_IN_VALUES, token, deadline)
        documents.extend(page)
        if not token:
            return documents


async def stored_documents(
    retriever: RetrieverPort, collection: str, document_ids: Sequence[str], deadline: Deadline
) -> dict[str, StoredDocument]:
    """Each of ``document_ids`` that is stored, as stored (content hash, access list)."""
    found: dict[str, StoredDocument] = {}
    for first in range(0, len(document_ids), MAX_IN_VALUES):
        part = document_ids[first : first + MAX_IN_VALUES]
        found.update((d.document_id, d) for d in await _all_pages(retriever, collection, part, deadline))
    return found


async def stored_hashes(
    retriever: RetrieverPort, collection: str, document_ids: Sequence[str], deadline: Deadline
) -> dict[str, str]:
    """The stored content hash of each of ``document_ids`` that is stored."""
    stored = await stored_documents(retriever, collection, document_ids, deadline)
    return {document_id: document.content_hash for document_id, document in stored.items()}


async def all_documents(retriever: RetrieverPort, collection: str, deadline: Deadline) -> list[StoredDocument]:
    """Every stored document of ``collection``."""
    return await _all_pages(retriever, collection, (), deadline)


async def stale_documents(
    retriever: RetrieverPort, collection: str, prefix: str, keep: Collection[str], deadline: Deadline
) -> list[str]:
    """Ids of the stored documents whose source starts with ``prefix`` and are not in ``keep``."""
    stored = await _all_pages(retriever, collection, (), deadline)
    return [d.document_id for d in stored if d.source.startswith(prefix) and d.document_id not in keep]
