"""Ingestion: documents in, chunks embedded and stored, progress out.

Documents are checked one by one (bad ones are reported, never fatal), chunked by the
embedder's tokens, embedded in batches (several calls in flight so embedder replicas work
in parallel), and stored under stable chunk ids: a re-ingested document's chunks are
overwritten in place, then the chunks it no longer has are deleted — in that order, so a
failed re-ingest leaves the old version searchable instead of nothing. Every stored group
bumps the collection's version, which is part of every answer-cache key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client import Counter

from ragmesh.v1 import common_pb2, embedder_pb2, orchestrator_pb2, retriever_pb2
from services.common.errors import InvalidArgument
from services.common.tracing import tracer
from services.orchestrator.cache import CollectionVersions
from services.orchestrator.chunking import chunk_id, split
from services.orchestrator.clients import Components, Deadline
from services.orchestrator.config import IngestSettings
from services.orchestrator.documents import document_problem, label
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
    documents: Sequence[orchestrator_pb2.Document]
    chunking: orchestrator_pb2.ChunkingOptions


@dataclass
class IngestState:
    """Counters of one ingestion, and errors not yet reported."""

    documents_total: int = 0
    documents_done: int = 0
    documents_failed: int = 0
    chunks_total: int = 0
    chunks_done: int = 0
    version: int = 0
    pending_errors: list[orchestrator_pb2.DocumentError] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def fail(self, document_id: str, reason: str) -> None:
        self.documents_failed += 1
        self.pending_errors.append(orchestrator_pb2.DocumentError(document_id=document_id, reason=reason))

    def progress(self, done: bool = False) -> orchestrator_pb2.IngestProgress:
        """A progress message carrying the errors found since the last one."""
        errors, self.pending_errors = self.pending_errors, []
        return orchestrator_pb2.IngestProgress(
            documents_total=self.documents_total,
            documents_done=self.documents_done,
            documents_failed=self.documents_failed,
            chunks_total=self.chunks_total,
            chunks_done=self.chunks_done,
            errors=errors,
            done=done,
            collection_version=self.version,
        )


class Ingestor:
    """Indexes documents into collections through the embedder and retriever."""

    def __init__(self, components: Components, versions: CollectionVersions, settings: IngestSettings) -> None:
        self.components = components
        self.versions = versions
        self.settings = settings
        self._info: embedder_pb2.EmbedderInfoResponse | None = None

    async def run(
        self, batches: AsyncIterator[IngestBatch], deadline: Deadline, state: IngestState | None = None
    ) -> AsyncIterator[orchestrator_pb2.IngestProgress]:
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

    def _accept(
        self, documents: Iterable[orchestrator_pb2.Document], state: IngestState, offset: int
    ) -> Iterable[orchestrator_pb2.Document]:
        """The indexable documents; the others are recorded as failed with their reason."""
        for position, document in enumerate(documents, start=offset):
            problem = document_problem(document, state.seen, self.settings.max_document_chars)
            if problem is not None:
                state.fail(label(document, position), problem)
                continue
            state.seen.add(document.id)
            yield document

    async def _chunking(self, options: orchestrator_pb2.ChunkingOptions, deadline: Deadline) -> tuple[int, int]:
        """(chunk tokens, overlap) for this ingestion, checked against the embedder's limit."""
        info = await self._embedder_info(deadline)
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

    async def _embedder_info(self, deadline: Deadline) -> embedder_pb2.EmbedderInfoResponse:
        if self._info is None:
            self._info = await self.components.embedder.Info(
                embedder_pb2.EmbedderInfoRequest(), timeout=deadline.remaining(30.0)
            )
        return self._info

    async def _ensure_collection(self, collection: str, deadline: Deadline) -> None:
        info = await self._embedder_info(deadline)
        metric = retriever_pb2.METRIC_COSINE if info.metric == "COSINE" else retriever_pb2.METRIC_IP
        await self.components.retriever.CreateCollection(
            retriever_pb2.CreateCollectionRequest(
                name=collection, dimension=info.dimension, metric=metric, if_not_exists=True
            ),
            timeout=deadline.remaining(60.0),
        )

    async def _index_group(
        self,
        collection: str,
        documents: list[orchestrator_pb2.Document],
        chunking: tuple[int, int],
        state: IngestState,
        deadline: Deadline,
    ) -> None:
        with tracer().start_as_current_span("ingest.group") as span:
            chunks = await self._chunks(documents, chunking, deadline)
            state.chunks_total += len(chunks)
            await self._embed(chunks, deadline)
            await self.components.retriever.Upsert(
                retriever_pb2.UpsertRequest(collection=collection, chunks=chunks), timeout=deadline.remaining(120.0)
            )
            # A re-ingested document may now have fewer chunks: drop the ones not rewritten.
            await self.components.retriever.Delete(
                retriever_pb2.DeleteRequest(
                    collection=collection,
                    document_ids=[document.id for document in documents],
                    filters=_none_of("chunk_id", [chunk.chunk_id for chunk in chunks]),
                ),
                timeout=deadline.remaining(60.0),
            )
            state.version = await self.versions.bump(collection)
            state.documents_done += len(documents)
            state.chunks_done += len(chunks)
            INGESTED.labels("documents").inc(len(documents))
            INGESTED.labels("chunks").inc(len(chunks))
            span.set_attribute("ragmesh.documents", len(documents))
            span.set_attribute("ragmesh.chunks", len(chunks))

    async def _chunks(
        self, documents: list[orchestrator_pb2.Document], chunking: tuple[int, int], deadline: Deadline
    ) -> list[common_pb2.Chunk]:
        spans: list[embedder_pb2.TokenizedText] = []
        for part in _by_size(documents, TOKENIZE_CHARS):  # large documents: keep each call bounded
            tokenized = await self.components.embedder.Tokenize(
                embedder_pb2.TokenizeRequest(texts=[d.text for d in part], return_offsets=True),
                timeout=deadline.remaining(60.0),
            )
            spans.extend(tokenized.texts)
        chunks: list[common_pb2.Chunk] = []
        for document, tokens in zip(documents, spans, strict=True):
            for piece in split(document.text, tokens.starts, tokens.ends, *chunking):
                chunks.append(
                    common_pb2.Chunk(
                        chunk_id=chunk_id(document.id, piece.index),
                        document_id=document.id,
                        text=piece.text,
                        metadata=document.metadata,
                    )
                )
        return chunks

    async def _embed(self, chunks: list[common_pb2.Chunk], deadline: Deadline) -> None:
        """Fill each chunk's vector, a few Embed calls in flight at once."""
        limit = asyncio.Semaphore(EMBED_CONCURRENCY)
        size = self.settings.embed_batch

        async def embed(batch: list[common_pb2.Chunk]) -> None:
            async with limit:
                reply = await self.components.embedder.Embed(
                    embedder_pb2.EmbedRequest(texts=[c.text for c in batch], kind=embedder_pb2.EMBED_KIND_DOCUMENT),
                    timeout=deadline.remaining(120.0),
                )
            for chunk, embedding in zip(batch, reply.embeddings, strict=True):
                chunk.vector.extend(embedding.values)

        await asyncio.gather(*(embed(chunks[i : i + size]) for i in range(0, len(chunks), size)))


def _by_size(documents: list[orchestrator_pb2.Document], max_chars: int) -> Iterable[list[orchestrator_pb2.Document]]:
    """Consecutive runs of documents holding at most ``max_chars`` characters (or one document)."""
    part: list[orchestrator_pb2.Document] = []
    size = 0
    for document in documents:
        if part and size + len(document.text) > max_chars:
            yield part
            part, size = [], 0
        part.append(document)
        size += len(document.text)
    if part:
        yield part


def _groups(documents: Iterable[orchestrator_pb2.Document], size: int) -> Iterable[list[orchestrator_pb2.Document]]:
    group: list[orchestrator_pb2.Document] = []
    for document in documents:
        group.append(document)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def _none_of(field: str, values: Sequence[str]) -> list[common_pb2.Filter]:
    """``field`` NOT_IN ``values``, as ANDed clauses of at most VALUES_PER_CLAUSE values."""
    return [
        common_pb2.Filter(
            field=field,
            op=common_pb2.FILTER_OP_NOT_IN,
            values=[common_pb2.Scalar(string_value=v) for v in values[first : first + VALUES_PER_CLAUSE]],
        )
        for first in range(0, len(values), VALUES_PER_CLAUSE)
    ]
