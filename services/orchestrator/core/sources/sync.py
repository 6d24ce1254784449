"""One sync of a source: its listing diffed against what the collection holds.

1. List the source. A listing that fails deletes nothing: the sync fails with the reason.
2. The documents the source stored before (ids ``<source>:<key>``) that the listing no longer
   has are the ones to delete — unless they are more than ``max_delete_share`` of them: then
   nothing is deleted and the sync fails saying so (an outage of a bucket or a site must
   never empty an index).
3. Entries whose change token is the one of the last sync (and whose document is stored) are
   unchanged and not even read; the others are read and ingested by the existing ingestor
   (parsed, and skipped by content hash when the bytes did not change). A document that
   cannot be read or parsed is reported by name; the others go on.
4. The gone documents are deleted; the tokens of what was indexed are kept for the next sync.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from services.common.errors import NotFound
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Document, DocumentError, IngestProgress
from services.orchestrator.core.ingest.ingestor import Ingestor
from services.orchestrator.core.ingest.state import IngestBatch, IngestState
from services.orchestrator.core.ingest.stored import all_documents
from services.orchestrator.core.ports import RetrieverPort
from services.orchestrator.core.sources.model import (
    ListingFailed,
    ReadFailed,
    SourceDocument,
    SourceEntry,
    SourceReader,
    SourceSpec,
    SourceStates,
)
from services.orchestrator.core.stores import CollectionVersions

#: Documents per ingestion batch of a sync.
SYNC_BATCH = 64


class SyncFailed(Exception):
    """The sync stopped before deleting anything; the message says why."""


@dataclass
class SyncResult:
    """What one sync did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    errors: list[DocumentError] = field(default_factory=list)
    progress: IngestProgress = field(default_factory=IngestProgress)


@dataclass
class _Plan:
    entries: dict[str, SourceEntry]
    stored: set[str]
    gone: list[str]
    to_read: list[str]


class SourceSyncer:
    """Runs syncs with the ingestor, the retriever port and the shared sync state."""

    def __init__(
        self, ingestor: Ingestor, retriever: RetrieverPort, versions: CollectionVersions, states: SourceStates
    ) -> None:
        self.ingestor, self.retriever, self.versions, self.states = ingestor, retriever, versions, states

    async def run(
        self, spec: SourceSpec, reader: SourceReader, on_progress: Callable[[IngestProgress], Awaitable[None]]
    ) -> SyncResult:
        """Sync ``spec`` through ``reader``; SyncFailed (nothing deleted) when it cannot be done safely."""
        plan = await self._plan(spec, reader)
        result = SyncResult(unchanged=len(plan.entries) - len(plan.to_read))
        state = IngestState()
        batches = self._batches(spec, reader, plan, result)
        async for update in self.ingestor.run(batches, Deadline(None), state):
            result.progress = update
            result.errors.extend(update.errors)
            await on_progress(dataclasses.replace(update, documents_total=len(plan.to_read), errors=()))
        failed = {error.document_id for error in result.errors}
        read = [d for d in plan.to_read if d not in failed]
        result.failed = len(failed)
        result.added = sum(1 for d in read if d not in plan.stored)
        changed = max(0, state.documents_done - state.documents_unchanged - result.added)
        result.updated, result.unchanged = changed, result.unchanged + state.documents_unchanged
        result.deleted = await self._delete(spec, plan.gone)
        tokens = {d: e.token for d, e in plan.entries.items() if d not in failed}
        await self.states.save_tokens(spec.name, tokens)
        return result

    async def _plan(self, spec: SourceSpec, reader: SourceReader) -> _Plan:
        try:
            listed = await reader.listing()
        except ListingFailed as error:
            raise SyncFailed(f"listing {spec.location} failed, nothing was deleted: {error}") from error
        entries = {spec.document_id(entry.key): entry for entry in listed}
        stored = await self._stored(spec)
        gone = sorted(stored - set(entries))
        if stored and len(gone) > spec.max_delete_share * len(stored):
            raise SyncFailed(
                f"the listing of {spec.location} has {len(entries)} documents: the sync would delete {len(gone)} of "
                f"the {len(stored)} stored, more than max_delete_share ({spec.max_delete_share:.0%}); nothing was "
                "deleted (if the source really lost them, raise max_delete_share for one sync)"
            )
        tokens = await self.states.tokens(spec.name)
        to_read = [d for d, e in entries.items() if d not in stored or tokens.get(d) != e.token]
        return _Plan(entries, stored, gone, to_read)

    async def _stored(self, spec: SourceSpec) -> set[str]:
        """Ids of the documents this source stored in its collection (none before its first sync)."""
        try:
            documents = await all_documents(self.retriever, spec.collection, Deadline(None))
        except NotFound:
            return set()
        prefix = spec.document_id("")
        return {d.document_id for d in documents if d.document_id.startswith(prefix)}

    async def _batches(
        self, spec: SourceSpec, reader: SourceReader, plan: _Plan, result: SyncResult
    ) -> AsyncIterator[IngestBatch]:
        """The documents to (re)index, read one by one (an unreadable one is reported)."""
        batch: list[Document] = []
        for document_id in plan.to_read:
            try:
                read = await reader.read(plan.entries[document_id])
            except ReadFailed as error:
                result.errors.append(DocumentError(document_id, f"{plan.entries[document_id].location}: {error}"))
                continue
            batch.append(_document(spec, document_id, read))
            if len(batch) == SYNC_BATCH:
                yield IngestBatch(spec.collection, batch)
                batch = []
        yield IngestBatch(spec.collection, batch)

    async def _delete(self, spec: SourceSpec, gone: list[str]) -> int:
        if not gone:
            return 0
        await self.retriever.delete(spec.collection, gone, (), Deadline(None))
        await self.versions.bump(spec.collection)
        return len(gone)


def _document(spec: SourceSpec, document_id: str, read: SourceDocument) -> Document:
    """The document to ingest: its access list from the source itself, else the listing's
    rule, else the source's default."""
    access = read.access if read.access is not None else read.entry.access
    metadata = {"source": read.entry.location, "source_name": spec.name}
    if read.title:
        metadata["title"] = read.title
    return Document(
        document_id,
        text=read.text,
        metadata=metadata,
        content=read.content,
        media_type=read.media_type,
        file_name=read.file_name,
        access=access if access is not None else spec.access,
    )
