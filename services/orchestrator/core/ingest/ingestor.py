"""Ingestion: documents in, chunks embedded and stored, progress out.

Documents are checked one by one (bad ones are reported, never fatal), chunked by the
embedder's tokens, embedded in batches (several calls in flight so embedder replicas work
in parallel), and stored under stable chunk ids: a re-ingested document's chunks are
overwritten in place, then the chunks it no longer has are deleted — in that order, so a
failed re-ingest leaves the old version searchable instead of nothing. Every stored group
bumps the collection's version, which is part of every answer-cache key. Domain types
only; the embedder and retriever are reached through their ports.

Raw files are parsed in the parser pool (worker processes, off the event loop) and chunked
by their structure (:mod:`services.orchestrator.core.ingest.structured`). Each document's content hash
is stored with its chunks; a document whose stored hash matches is skipped (``unchanged``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from prometheus_client import Counter

from ragmesh.vocabulary.access import PUBLIC, access_list
from ragmesh.vocabulary.limits import MAX_IN_VALUES
from services.common.errors import InvalidArgument
from services.common.tracing import tracer
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Chunking, Document, IngestProgress
from services.orchestrator.core.ingest.documents import document_problem, label
from services.orchestrator.core.ingest.state import (
    IngestBatch,
    IngestState,
    groups,
    none_of,
)
from services.orchestrator.core.ingest.steps import cut_chunks, embed_drafts, parse_documents, stage
from services.orchestrator.core.ingest.stored import stale_documents, stored_documents
from services.orchestrator.core.ingest.structured import (
    Parser,
    content_hash,
)
from services.orchestrator.core.ports import EmbedderPort, RetrieverPort
from services.orchestrator.core.requests import check_collection
from services.orchestrator.core.settings import IngestSettings
from services.orchestrator.core.stores import CollectionVersions

INGESTED = Counter("ragmesh_orchestrator_ingested_total", "Documents and chunks ingested", ["kind"])
#: Wall time of each ingestion stage (parse, chunk = tokenize and cut, embed, store), summed.
#: Documents stored together (one delete + one upsert + one version bump).
GROUP_DOCUMENTS = 32


class Ingestor:
    """Indexes documents into collections through the embedder and retriever."""

    def __init__(
        self,
        embedder: EmbedderPort,
        retriever: RetrieverPort,
        versions: CollectionVersions,
        settings: IngestSettings,
        parser: Parser | None = None,
    ) -> None:
        self.embedder = embedder
        self.retriever = retriever
        self.versions = versions
        self.settings = settings
        #: Parses raw file content (None: documents with content are rejected).
        self.parser = parser

    async def run(
        self, batches: AsyncIterator[IngestBatch], deadline: Deadline, state: IngestState | None = None
    ) -> AsyncIterator[IngestProgress]:
        """Index every batch, yielding progress after each stored group and a final message."""
        state = state or IngestState()
        collection: str | None = None
        chunking = (0, 0)
        sync_prefix = ""
        messages = 0
        async for batch in batches:
            messages += 1
            self._check_size(batch, messages)
            if collection is None:  # the first message names the collection and chunking
                collection = check_collection(batch.collection)
                chunking = await self._chunking(batch.chunking, deadline)
                sync_prefix = batch.sync_source_prefix
                await self._ensure_collection(collection, deadline)
            state.received.update(document.id for document in batch.documents)
            offset = state.documents_total
            state.documents_total += len(batch.documents)
            for group in groups(self._accept(batch.documents, state, offset), GROUP_DOCUMENTS):
                await self._index_group(collection, group, chunking, state, deadline)
                yield state.progress()
            if state.pending_errors:
                yield state.progress()
        if collection is not None and sync_prefix:
            await self._sync(collection, sync_prefix, state, deadline)
        if collection is not None:
            state.version = self.versions.number(collection)
        yield state.progress(done=True)

    async def _sync(self, collection: str, prefix: str, state: IngestState, deadline: Deadline) -> None:
        """Delete the documents under ``prefix`` that this ingestion did not name."""
        gone = await stale_documents(self.retriever, collection, prefix, state.received, deadline)
        for first in range(0, len(gone), MAX_IN_VALUES):
            await self.retriever.delete(collection, gone[first : first + MAX_IN_VALUES], (), deadline)
        if gone:
            state.documents_deleted += len(gone)
            state.version = await self.versions.bump(collection)

    def _check_size(self, batch: IngestBatch, number: int) -> None:
        """A message over the per-message limit ends the call; earlier messages stay indexed."""
        limit = self.settings.max_documents_per_message
        if len(batch.documents) > limit:
            raise InvalidArgument(
                f"Ingest message {number} holds {len(batch.documents)} documents; the limit is {limit} "
                "per message: split the batch (earlier messages were indexed)"
            )

    def _accept(self, documents: Iterable[Document], state: IngestState, offset: int) -> Iterable[Document]:
        """The indexable documents; the others are recorded as failed with their reason."""
        for position, document in enumerate(documents, start=offset):
            problem = document_problem(document, state.seen, self.settings.max_document_chars)
            if problem is not None:
                state.fail(label(document, position), problem)
                continue
            state.seen.add(document.id)
            yield document

    async def _chunking(self, options: Chunking, deadline: Deadline) -> tuple[int, int]:
        """(chunk tokens, overlap) for this ingestion, checked against the embedder's limit."""
        info = await self.embedder.facts(deadline)
        limit = info.max_tokens - info.special_tokens
        if options.chunk_tokens == 0:
            size = min(self.settings.chunk_tokens, limit)
            return size, min(options.overlap_tokens or self.settings.overlap_tokens, size // 2)
        if not 16 <= options.chunk_tokens <= limit:
            raise InvalidArgument(
                f"chunk_tokens must be between 16 and {limit} (the embedder's limit), got {options.chunk_tokens}"
            )
        if options.overlap_tokens >= options.chunk_tokens:
            raise InvalidArgument(
                f"overlap_tokens ({options.overlap_tokens}) must be less than chunk_tokens ({options.chunk_tokens})"
            )
        return options.chunk_tokens, options.overlap_tokens

    async def _ensure_collection(self, collection: str, deadline: Deadline) -> None:
        info = await self.embedder.facts(deadline)
        await self.retriever.ensure_collection(collection, info.dimension, info.metric, deadline)

    async def _index_group(
        self,
        collection: str,
        documents: list[Document],
        chunking: tuple[int, int],
        state: IngestState,
        deadline: Deadline,
    ) -> None:
        with tracer().start_as_current_span("ingest.group") as span:
            documents = await self._changed(collection, documents, chunking, state, deadline)
            with stage("parse"):
                parsed = await parse_documents(self.parser, documents, state)
            documents = [d for d in documents if d.id in parsed]
            if not documents:
                return
            with stage("chunk"):
                chunks = await cut_chunks(self.embedder, documents, parsed, chunking, deadline)
            state.chunks_total += len(chunks)
            with stage("embed"):
                records = await embed_drafts(self.embedder, chunks, self.settings.embed_batch, deadline)
            with stage("store"):
                await self.retriever.upsert(collection, records, deadline)
                # A re-ingested document may now have fewer chunks: drop the ones not rewritten.
                await self.retriever.delete(
                    collection,
                    [document.id for document in documents],
                    none_of("chunk_id", [chunk.chunk_id for chunk in chunks]),
                    deadline,
                )
            state.version = await self.versions.bump(collection)
            state.documents_done += len(documents)
            state.chunks_done += len(chunks)
            INGESTED.labels("documents").inc(len(documents))
            INGESTED.labels("chunks").inc(len(chunks))
            span.set_attribute("ragmesh.documents", len(documents))
            span.set_attribute("ragmesh.chunks", len(chunks))

    async def _changed(
        self,
        collection: str,
        documents: list[Document],
        chunking: tuple[int, int],
        state: IngestState,
        deadline: Deadline,
    ) -> list[Document]:
        """The documents whose stored hash differs (the others count as done, unchanged; a new
        access list of an unchanged document is written without re-embedding it)."""
        stored = await stored_documents(self.retriever, collection, [d.id for d in documents], deadline)
        changed, access_changed = [], []
        for document in documents:
            found = stored.get(document.id)
            wanted = access_list(document.access)
            legacy_restricted = not found.access and wanted != (PUBLIC,) if found is not None else False
            if found is None or found.content_hash != content_hash(document, chunking) or legacy_restricted:
                changed.append(document)  # (a collection without access lists then refuses it, saying why)
                continue
            state.documents_unchanged += 1
            state.documents_done += 1
            if found.access and found.access != wanted:
                access_changed.append(document)
        for document in access_changed:
            await self.retriever.set_access(collection, [document.id], access_list(document.access), deadline)
            INGESTED.labels("access_updated").inc()
        if access_changed:
            state.version = await self.versions.bump(collection)
        INGESTED.labels("unchanged").inc(len(documents) - len(changed))
        return changed
