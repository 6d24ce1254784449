"""The steps of indexing a group of documents, each on its own: parse raw files (in the parser
pool, off the event loop), cut chunks by the embedder's tokens and the documents' structure,
embed them (a few calls in flight so embedder replicas work in parallel). The
:class:`~services.orchestrator.core.ingest.ingestor.Ingestor` runs them in order."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge

from ragmesh.vocabulary.access import access_list
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import ChunkRecord, Document
from services.orchestrator.core.ingest.chunking import chunk_id
from services.orchestrator.core.ingest.state import IngestState, by_size
from services.orchestrator.core.ingest.structured import (
    Parser,
    content_hash,
    document_metadata,
    structured_pieces,
    text_pieces,
)
from services.orchestrator.core.ports import EmbedderPort, TokenSpans
from services.parsing import DocumentRejected, ParsedDocument

#: Wall time of each ingestion stage (parse, chunk = tokenize and cut, embed, store), summed.
STAGE_SECONDS = Counter("ragmesh_orchestrator_ingest_stage_seconds", "Wall time per ingestion stage", ["stage"])
PARSING = Gauge("ragmesh_orchestrator_parsing_documents", "Raw files being parsed right now")
#: Characters per Tokenize call (the embedder bounds a request's size).
TOKENIZE_CHARS = 1_000_000
#: Embed calls in flight at once for one ingestion.
EMBED_CONCURRENCY = 4


async def parse_documents(
    parser: Parser | None, documents: list[Document], state: IngestState
) -> dict[str, ParsedDocument | None]:
    """Each indexable document's parse (None for text); rejected files are recorded as failed."""

    async def parse(document: Document) -> ParsedDocument | None:
        if parser is None:
            raise DocumentRejected("this server does not parse raw content; send the text")
        with PARSING.track_inprogress():
            parsed = await parser.parse(document.content, document.media_type or None, document.file_name or None)
        state.pages_done += parsed.pages or 0
        return parsed

    raw = [d for d in documents if d.content]
    results = await asyncio.gather(*(parse(d) for d in raw), return_exceptions=True)
    parsed: dict[str, ParsedDocument | None] = {d.id: None for d in documents if not d.content}
    for document, result in zip(raw, results, strict=True):
        if isinstance(result, DocumentRejected):
            state.fail(document.id, f"{document.file_name or document.id}: {result.reason}")
        elif isinstance(result, BaseException):
            raise result
        else:
            parsed[document.id] = result
    return parsed


async def cut_chunks(
    embedder: EmbedderPort,
    documents: list[Document],
    parsed: dict[str, ParsedDocument | None],
    chunking: tuple[int, int],
    deadline: Deadline,
) -> list[Draft]:
    """The chunks of ``documents``, cut by the embedder's own tokens (parsed files by their
    structure), each with its document's metadata and content hash."""
    texts: list[str] = []
    for document in documents:
        result = parsed[document.id]
        texts.extend([s.text for s in result.segments] if result is not None else [document.text])
    spans: list[TokenSpans] = []
    for part in by_size(texts, TOKENIZE_CHARS):  # large documents: keep each call bounded
        spans.extend(await embedder.tokenize(part, deadline))
    chunks: list[Draft] = []
    cursor = 0  # this document's first spans
    for document in documents:
        result = parsed[document.id]
        if result is None:
            pieces = text_pieces(document.text, spans[cursor], chunking)
            cursor += 1
        else:
            count = len(result.segments)
            pieces = structured_pieces(result, spans[cursor : cursor + count], chunking)
            cursor += count
        metadata = document_metadata(document, content_hash(document, chunking))
        for index, piece in enumerate(pieces):
            chunks.append(Draft(chunk_id(document.id, index), document, piece.text, {**metadata, **piece.metadata}))
    return chunks


async def embed_drafts(embedder: EmbedderPort, chunks: list[Draft], size: int, deadline: Deadline) -> list[ChunkRecord]:
    """Each chunk with its vector, a few Embed calls in flight at once."""
    limit = asyncio.Semaphore(EMBED_CONCURRENCY)

    async def embed(batch: list[Draft]) -> list[ChunkRecord]:
        async with limit:
            vectors = (await embedder.embed([c.text for c in batch], False, deadline)).vectors
        return [
            ChunkRecord(c.chunk_id, c.document.id, c.text, c.metadata, vector, access_list(c.document.access))
            for c, vector in zip(batch, vectors, strict=True)
        ]

    batches = await asyncio.gather(*(embed(chunks[i : i + size]) for i in range(0, len(chunks), size)))
    return [record for batch in batches for record in batch]


@dataclass(frozen=True)
class Draft:
    """A chunk cut from its document, not yet embedded."""

    chunk_id: str
    document: Document
    text: str
    metadata: dict[str, Any]


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Add the block's wall time to the ingestion stage ``name``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        STAGE_SECONDS.labels(name).inc(time.perf_counter() - started)
