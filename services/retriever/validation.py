"""Checks of retriever requests, each raising InvalidArgument with what to fix."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ragmesh.vocabulary import SearchMode
from ragmesh.vocabulary.access import PUBLIC
from ragmesh.vocabulary.limits import (
    MAX_ACCESS_PRINCIPALS,
    MAX_SEARCH_TOP_K,
    METADATA_BYTES,
    PRINCIPAL_BYTES,
    TEXT_BYTES,
)
from ragmesh.vocabulary.names import IDENTIFIER
from services.common.errors import FailedPrecondition, InvalidArgument
from services.retriever.backend import ChunkRow, CollectionSpec
from services.retriever.filters import check_id

#: Milvus JSON limit (bytes).


def check_name(name: str) -> None:
    """A collection name: 1 to 64 letters, digits and underscores, starting with a letter."""
    if not IDENTIFIER.fullmatch(name):
        raise InvalidArgument(
            f"collection name {name[:80]!r} is invalid; use 1 to 64 letters, digits and underscores, "
            "starting with a letter"
        )


def check_top_k(top_k: int) -> None:
    """top_k within 1..MAX_SEARCH_TOP_K."""
    if not 1 <= top_k <= MAX_SEARCH_TOP_K:
        raise InvalidArgument(f"top_k must be 1 to {MAX_SEARCH_TOP_K}, got {top_k}")


def check_vector(spec: CollectionSpec, vector: Sequence[float], mode: SearchMode) -> None:
    """A query vector of the collection's dimension with finite values."""
    if not vector:
        raise InvalidArgument(f"{mode.name} search needs a query vector of dimension {spec.dimension}")
    if len(vector) != spec.dimension:
        raise InvalidArgument(
            f"vector has dimension {len(vector)}; collection {spec.name!r} has dimension {spec.dimension}"
        )
    if not all(map(math.isfinite, vector)):
        raise InvalidArgument("vector holds NaN or infinite values (or values beyond float32)")


def check_query_text(spec: CollectionSpec, text: str, mode: SearchMode) -> None:
    """Query text for BM25, on a collection that has full text."""
    if not spec.full_text:
        raise InvalidArgument(
            f"collection {spec.name!r} has no full-text index (it was created with disable_full_text), so "
            f"{mode.name} search is impossible; use SEARCH_MODE_DENSE, or recreate the collection with full text"
        )
    if not text.strip():
        raise InvalidArgument(f"{mode.name} search needs query_text (BM25 ranks by it); set it or use DENSE")
    if len(text.encode()) > TEXT_BYTES:
        raise InvalidArgument(f"query_text is longer than {TEXT_BYTES} bytes")


def check_chunks(spec: CollectionSpec, chunks: Sequence[ChunkRow]) -> None:
    """Every chunk: ids, text and metadata within Milvus's limits, a vector of the right size."""
    for i, chunk in enumerate(chunks):
        where = f"chunks[{i}]"
        check_id(f"{where}.chunk_id", chunk.chunk_id)
        check_id(f"{where}.document_id", chunk.document_id)
        if len(chunk.text.encode()) > TEXT_BYTES:
            raise InvalidArgument(f"{where}.text is longer than {TEXT_BYTES} bytes; split the chunk")
        if len(chunk.vector) != spec.dimension:
            raise InvalidArgument(
                f"{where}.vector has dimension {len(chunk.vector)}; "
                f"collection {spec.name!r} has dimension {spec.dimension}"
            )
        _check_metadata(where, chunk.metadata)
        check_access(f"{where}.access", chunk.access)
    finite = np.isfinite(np.asarray([chunk.vector for chunk in chunks], dtype=np.float32)).all(axis=1)
    if not finite.all():
        bad = int(np.argmin(finite))
        raise InvalidArgument(f"chunks[{bad}].vector holds NaN or infinite values (or values beyond float32)")


def _check_metadata(where: str, metadata: dict[str, Any]) -> None:
    try:
        # UTF-8 JSON, as stored and as the orchestrator measures it (ASCII escapes would
        # count an "é" as 6 bytes and refuse metadata the orchestrator's contract accepts).
        size = len(json.dumps(metadata, ensure_ascii=False, allow_nan=False).encode())
    except ValueError:
        raise InvalidArgument(f"{where}.metadata holds NaN or infinity, which JSON cannot store") from None
    if size > METADATA_BYTES:
        raise InvalidArgument(f"{where}.metadata is larger than {METADATA_BYTES} bytes of JSON")


def unique_by_chunk_id(chunks: Sequence[ChunkRow]) -> list[ChunkRow]:
    """One row per chunk id, the last one given winning (as if upserted one after another)."""
    return list({chunk.chunk_id: chunk for chunk in chunks}.values())


def check_access(where: str, access: Sequence[str]) -> None:
    """An access list: at most MAX_ACCESS_PRINCIPALS non-empty principals of PRINCIPAL_BYTES."""
    if len(access) > MAX_ACCESS_PRINCIPALS:
        raise InvalidArgument(f"{where} holds {len(access)} principals; the limit is {MAX_ACCESS_PRINCIPALS}")
    for principal in access:
        if not principal or len(principal.encode()) > PRINCIPAL_BYTES or not principal.isprintable():
            raise InvalidArgument(f"{where}: a principal must be 1 to {PRINCIPAL_BYTES} bytes of printable text")


def with_access(spec: CollectionSpec, chunks: Sequence[ChunkRow]) -> list[ChunkRow]:
    """The chunks as stored: an empty access list is public (``["*"]``); a collection made
    before access lists takes public chunks only (and stores no access column)."""
    if spec.access_lists:
        return [c if c.access else dataclasses.replace(c, access=(PUBLIC,)) for c in chunks]
    if any(c.access and tuple(c.access) != (PUBLIC,) for c in chunks):
        raise FailedPrecondition(
            f"collection {spec.name!r} was created before access lists and cannot store them: re-create it "
            "(drop it and ingest again, or ingest into a new collection) to restrict documents"
        )
    return [dataclasses.replace(c, access=()) for c in chunks]
