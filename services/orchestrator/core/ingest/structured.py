"""Documents as ingestion cuts them: content hashes, parsing of raw files, and chunks that
follow a parsed document's structure.

A document's hash covers what decides its chunks — its text or raw bytes, media type, file
name, metadata, the chunking settings and :data:`PARSER_VERSION` — so an unchanged hash
means the stored chunks are still right. Parsed documents are chunked by their segments
(``group_segments`` within the token budget; a segment over it is cut by
``chunking.split``) and every chunk carries ``source``, ``page``, ``section`` and
``content_type`` besides the document's own metadata.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from services.orchestrator.core.domain import Document, Metadata
from services.orchestrator.core.ingest.chunking import split
from services.orchestrator.core.ports import TokenSpans
from services.parsing import ParsedDocument, group_segments, join_group

#: Bump when parsing or structured chunking changes what a file's chunks are: every file is
#: then re-indexed once instead of being skipped as unchanged.
PARSER_VERSION = "1"
HASH_KEY = "content_hash"
#: Tokens left free in a group of segments: joined segments may tokenize a token longer at a
#: seam with BPE tokenizers (WordPiece counts are exact).
SEAM_MARGIN_TOKENS = 4


class Parser(Protocol):
    """What ingestion needs of :class:`services.parsing.ParserPool`."""

    async def parse(self, content: bytes, media_type: str | None, file_name: str | None) -> ParsedDocument:
        """The document's segments; DocumentRejected says why it cannot be indexed."""
        ...


@dataclass(frozen=True)
class Piece:
    """A chunk's text and the metadata it adds to its document's."""

    text: str
    metadata: Metadata


def content_hash(document: Document, chunking: tuple[int, int]) -> str:
    """The hash of everything that decides ``document``'s chunks."""
    digest = hashlib.sha256()
    header = {
        "parser": PARSER_VERSION,
        "chunking": list(chunking),
        "media_type": document.media_type,
        "file_name": document.file_name,
        "metadata": document.metadata,
        "raw": bool(document.content),
    }
    digest.update(json.dumps(header, sort_keys=True, ensure_ascii=False, default=str).encode())
    digest.update(b"\0")
    digest.update(document.content or document.text.encode())
    return digest.hexdigest()


def document_metadata(document: Document, digest: str) -> dict[str, Any]:
    """The metadata every chunk of ``document`` has."""
    metadata = {**document.metadata, HASH_KEY: digest}
    if document.content and document.file_name and "source" not in document.metadata:
        metadata["source"] = document.file_name
    return metadata


def text_pieces(text: str, spans: TokenSpans, chunking: tuple[int, int]) -> list[Piece]:
    """Chunks of a plain-text document (no structure metadata)."""
    return [Piece(piece.text, {}) for piece in split(text, spans.starts, spans.ends, *chunking)]


def structured_pieces(parsed: ParsedDocument, spans: Sequence[TokenSpans], chunking: tuple[int, int]) -> list[Piece]:
    """Chunks of a parsed document, following its segments (``spans``: one per segment)."""
    chunk_tokens, overlap = chunking
    counts = [len(s.starts) for s in spans]
    budget = max(8, chunk_tokens - SEAM_MARGIN_TOKENS)
    pieces: list[Piece] = []
    for group in group_segments(parsed.segments, counts, budget):
        if sum(counts[i] for i in group) > budget:  # always a single segment: cut it by tokens
            segment = parsed.segments[group[0]]
            where = _where(parsed.content_type, segment.page, segment.section)
            cuts = split(segment.text, spans[group[0]].starts, spans[group[0]].ends, chunk_tokens, overlap)
            pieces.extend(Piece(cut.text, where) for cut in cuts)
            continue
        joined = join_group(parsed.segments, group)
        if joined.text.strip():
            pieces.append(Piece(joined.text, _where(parsed.content_type, joined.page, joined.section)))
    return pieces


def _where(content_type: str, page: int | None, section: Sequence[str]) -> dict[str, Any]:
    where: dict[str, Any] = {"content_type": content_type}
    if page is not None:
        where["page"] = page
    if section:
        where["section"] = " / ".join(section)
    return where
