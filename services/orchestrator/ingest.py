"""Ingestion: documents in, chunks embedded and stored, progress out.

Documents are checked one by one (bad ones are reported, never fatal), chunked by the
embedder's tokens, embedded in batches (several calls in flight so embedder replicas work
in parallel), and stored under stable chunk ids: a re-ingested document's chunks are
overwritten in place, then the chunks it no longer has are deleted — in that order, so a
failed re-ingest leaves the old version searchable instead of nothing. Every stored group
bumps the collection's version, which is part of every answer-cache key. Domain types
only; the embedder and retriever are reached through their ports.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client import Counter

from services.common.errors import InvalidArgument
from services.common.tracing import tracer
from services.orchestrator.cache import CollectionVersions
from services.orchestrator.chunking import chunk_id, split
from services.orchestrator.config import IngestSettings
from services.orchestrator.deadline import Deadline
from services.orchestrator.documents import document_problem, label
from services.orchestrator.domain import Chunking, ChunkRecord, Document, DocumentError, Filter, IngestProgress
from services.orchestrator.ports import EmbedderPort, RetrieverPort, TokenSpans
from services.orchestrator.requests import check_collection

INGESTED = Counter("ragmesh_orchestrator_ingested_total", "Documents and chunks ingested", ["kind"])
#: Documents stored together (one delete + one upsert + one version bump).
GROUP_DOCUMENTS = 32
#: Values per IN / NOT_IN filter clause the retriever accepts.
VALUES_PER_CLAUSE = 1000
#: Characters per Tokenize call (the embedder bounds a request's size).
TOKENIZE_CHARS = 1_000_000
#: Embed calls in flight at once for one ingestion.
EMBED_CONCURRENCY = 4


@dataclass
class IngestBatch:
    """One message's worth of documents."""

    collection: str
    documents: Sequence[Document]
    chunking: Chunking = field(default_factory=Chunking)


@dataclass
class IngestState:
    """Counters of one ingestion, and errors not yet reported."""

    documents_total: int = 0
    documents_done: int = 0
    documents_failed: int = 0
    chunks_total: int = 0
    chunks_done: int = 0
    version: int = 0
    pending_errors: list[DocumentError] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def fail(self, document_id: str, reason: str) -> None:
        self.documents_failed += 1
        self.pending_errors.append(DocumentError(document_id, reason))

    def progress(self, done: bool = False) -> IngestProgress:
        """A progress message carrying the errors found since the last one."""
        errors, self.pending_errors = self.pending_errors, []
        return IngestProgress(
            documents_total=self.documents_total,
            documents_done=self.documents_done,
            documents_failed=self.documents_failed,
            chunks_total=self.chunks_total,
            chunks_done=self.chunks_done,
            errors=tuple(errors),
            done=done,
            collection_version=self.version,
        )


class Ingestor:
    """Indexes documents into collections through the embedder and retriever."""

    def __init__(
        self, embedder: EmbedderPort, retriever: RetrieverPort, versions: CollectionVersions, settings: IngestSettings
    ) -> None:
        self.embedder = embedder
        self.retriever = retriever
        self.versions = versions
        self.settings = settings

    async def run(
        self, batches: AsyncIterator[IngestBatch], deadline: Deadline, state: IngestState | None = None
    ) -> AsyncIterator[IngestProgress]:
        """Index every batch, yielding progress after each stored group and a final message."""
        state = state or IngestState()
        collection: str | None = None
        chunking = (0, 0)
        async for batch in batches:
            if collection is None:  # the first message names the collection and chunking
                collection = check_collection(batch.collection)
                chunking = await self._chunking(batch.chunking, deadline)
                await self._ensure_collection(collection, deadline)
            offset = state.documents_total
            state.documents_total += len(batch.documents)
            for group in _groups(self._accept(batch.documents, state, offset), GROUP_DOCUMENTS):
                await self._index_group(collection, group, chunking, state, deadline)
                yield state.progress()
            if state.pending_errors:
                yield state.progress()
        if collection is not None:
            state.version = self.versions.number(collection)
        yield state.progress(done=True)

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
            chunks = await self._chunks(documents, chunking, deadline)
            state.chunks_total += len(chunks)
            records = await self._embed(chunks, deadline)
            await self.retriever.upsert(collection, records, deadline)
            # A re-ingested document may now have fewer chunks: drop the ones not rewritten.
            await self.retriever.delete(
                collection,
                [document.id for document in documents],
                _none_of("chunk_id", [chunk.chunk_id for chunk in chunks]),
                deadline,
            )
            state.version = await self.versions.bump(collection)
            state.documents_done += len(documents)
            state.chunks_done += len(chunks)
            INGESTED.labels("documents").inc(len(documents))
            INGESTED.labels("chunks").inc(len(chunks))
            span.set_attribute("ragmesh.documents", len(documents))
            span.set_attribute("ragmesh.chunks", len(chunks))

    async def _chunks(self, documents: list[Document], chunking: tuple[int, int], deadline: Deadline) -> list[_Draft]:
        spans: list[TokenSpans] = []
        for part in _by_size(documents, TOKENIZE_CHARS):  # large documents: keep each call bounded
            spans.extend(await self.embedder.tokenize([d.text for d in part], deadline))
        chunks: list[_Draft] = []
        for document, tokens in zip(documents, spans, strict=True):
            for piece in split(document.text, tokens.starts, tokens.ends, *chunking):
                chunks.append(_Draft(chunk_id(document.id, piece.index), document, piece.text))
        return chunks

    async def _embed(self, chunks: list[_Draft], deadline: Deadline) -> list[ChunkRecord]:
        """Each chunk with its vector, a few Embed calls in flight at once."""
        limit = asyncio.Semaphore(EMBED_CONCURRENCY)
        size = self.settings.embed_batch

        async def embed(batch: list[_Draft]) -> list[ChunkRecord]:
            async with limit:
                vectors = await self.embedder.embed([c.text for c in batch], False, deadline)
            return [
                ChunkRecord(c.chunk_id, c.document.id, c.text, c.document.metadata, vector)
                for c, vector in zip(batch, vectors, strict=True)
            ]

        batches = await asyncio.gather(*(embed(chunks[i : i + size]) for i in range(0, len(chunks), size)))
        return [record for batch in batches for record in batch]


@dataclass(frozen=True)
class _Draft:
    """A chunk cut from its document, not yet embedded."""

    chunk_id: str
    document: Document
    text: str


def _by_size(documents: list[Document], max_chars: int) -> Iterable[list[Document]]:
    """Consecutive runs of documents holding at most ``max_chars`` characters (or one document)."""
    part: list[Document] = []
    size = 0
    for document in documents:
        if part and size + len(document.text) > max_chars:
            yield part
            part, size = [], 0
        part.append(document)
        size += len(document.text)
    if part:
        yield part


def _groups(documents: Iterable[Document], size: int) -> Iterable[list[Document]]:
    group: list[Document] = []
    for document in documents:
        group.append(document)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def _none_of(field: str, values: Sequence[str]) -> list[Filter]:
    """``field`` NOT_IN ``values``, as ANDed clauses of at most VALUES_PER_CLAUSE values."""
    return [
        Filter(field, "NOT_IN", values=tuple(values[first : first + VALUES_PER_CLAUSE]))
        for first in range(0, len(values), VALUES_PER_CLAUSE)
    ]
