"""The facade's calls on documents and collections, each authorized for the caller and scoped
by its access list: deletes, collection sizes (counting only what the caller may read),
listings, one document's chunks, and a new access list for documents (no re-embedding)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from services.common.errors import InvalidArgument
from services.common.principal import authorize, current_principal
from services.orchestrator.core import documents
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.documents import DocumentChunks
from services.orchestrator.core.domain import CollectionSummary
from services.orchestrator.core.permissions import access_filters, checked_access
from services.orchestrator.core.ports import Ports, StoredDocument
from services.orchestrator.core.requests import check_collection
from services.orchestrator.core.stores import CollectionVersions

MAX_DELETE_IDS = 10_000
#: Documents of one SetDocumentAccess call.
MAX_ACCESS_IDS = 1000


class ReadParts(Protocol):
    """What these calls use of the core's parts."""

    @property
    def ports(self) -> Ports: ...
    @property
    def versions(self) -> CollectionVersions: ...


class ScopedReads:
    """Documents and collections, for the principal bound to the call."""

    parts: ReadParts

    async def delete_documents(
        self, collection: str, document_ids: Sequence[str], deadline: Deadline
    ) -> tuple[int, int]:
        """Delete every chunk of the documents and bump the collection's version; returns
        (chunks deleted, new version)."""
        _check_ids(collection, document_ids, MAX_DELETE_IDS)
        deleted = await self.parts.ports.retriever.delete(collection, document_ids, (), deadline)
        return deleted, await self.parts.versions.bump(collection)

    async def set_document_access(
        self, collection: str, document_ids: Sequence[str], access: Sequence[str], deadline: Deadline
    ) -> tuple[int, int]:
        """Give the documents a new access list (empty: the whole tenant) without re-embedding
        them, and bump the collection's version so that no answer cached before is served;
        returns (chunks updated, new version)."""
        _check_ids(collection, document_ids, MAX_ACCESS_IDS)
        stored = checked_access(list(access))
        updated = await self.parts.ports.retriever.set_access(collection, document_ids, stored, deadline)
        return updated, await self.parts.versions.bump(collection)

    async def collections(self, deadline: Deadline) -> list[CollectionSummary]:
        """The caller's collections with their sizes (the chunks it may read) and versions."""
        summaries = []
        principal = current_principal()
        versions = self.parts.versions
        for info in await self.parts.ports.retriever.collections(deadline, access_filters(principal)):
            if not principal.may(info.name):
                continue  # another tenant's collection is not even listed
            await versions.get(info.name)
            summaries.append(
                CollectionSummary(info.name, info.count, versions.number(info.name), info.dimension, info.full_text)
            )
        return summaries

    async def list_documents(
        self, collection: str, page: tuple[int, str], name_contains: str, deadline: Deadline
    ) -> tuple[list[StoredDocument], str]:
        """A page of the documents the caller may read in a collection it may read (see
        :func:`documents.list_documents`)."""
        principal = current_principal()
        authorize(principal, collection)
        retriever = self.parts.ports.retriever
        filters = access_filters(principal)
        return await documents.list_documents(
            retriever, collection, page, name_contains, filters=filters, deadline=deadline
        )

    async def get_document(self, collection: str, document_id: str, deadline: Deadline) -> DocumentChunks:
        """A document's chunks in order, when the caller may read it (NotFound otherwise)."""
        principal = current_principal()
        authorize(principal, collection)
        filters = access_filters(principal)
        return await documents.get_document(self.parts.ports.retriever, collection, document_id, filters, deadline)


def _check_ids(collection: str, document_ids: Sequence[str], limit: int) -> None:
    """A writable collection and 1 to ``limit`` non-empty ids; the errors name the field."""
    check_collection(collection)
    authorize(current_principal(), collection, write=True)
    if not document_ids or len(document_ids) > limit:
        raise InvalidArgument(f"document_ids must hold 1 to {limit} ids, got {len(document_ids)}")
    if any(not d.strip() for d in document_ids):
        raise InvalidArgument("document_ids contains an empty id")
