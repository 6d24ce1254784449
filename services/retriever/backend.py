"""The vector-store interface the retriever engine depends on, and its domain types.

The engine validates requests and keeps metrics; a :class:`VectorStore` only stores and
searches. The real implementation is :class:`~services.retriever.store.MilvusStore`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from ragmesh.vocabulary import SearchMode


class Metric(Enum):
    """Vector similarity metric (Milvus names)."""

    COSINE = "COSINE"
    IP = "IP"
    L2 = "L2"


class IndexKind(Enum):
    """Vector index type."""

    FLAT = "flat"
    HNSW = "hnsw"
    IVF_FLAT = "ivf_flat"


@dataclass(frozen=True)
class CollectionSpec:
    """What a collection is: fixed when it is created."""

    name: str
    dimension: int
    metric: Metric
    index: IndexKind
    #: BM25 full-text search (and so sparse and hybrid modes) enabled.
    full_text: bool
    #: The ``access`` and ``access_terms`` columns (access lists) exist; older collections lack them.
    access_lists: bool = True


@dataclass(frozen=True)
class CollectionInfo:
    """A collection and how many chunks it holds now."""

    spec: CollectionSpec
    count: int


@dataclass(frozen=True)
class ChunkRow:
    """One chunk as written to the store."""

    chunk_id: str
    document_id: str
    text: str
    metadata: dict[str, Any]
    vector: Sequence[float]
    #: Principals that may read the chunk ("*" alone, or empty: public).
    access: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hit:
    """One search result; ``score`` is higher-is-better in every metric and mode."""

    chunk_id: str
    document_id: str
    text: str
    metadata: dict[str, Any]
    score: float
    vector: Sequence[float] | None = None


@dataclass(frozen=True)
class SearchQuery:
    """A validated search: the store runs it as given."""

    mode: SearchMode
    top_k: int
    #: Query vector (DENSE and HYBRID).
    vector: Sequence[float] | None
    #: Query text (SPARSE and HYBRID).
    text: str
    #: Milvus boolean expression built by :mod:`services.retriever.filters`; empty for none.
    expression: str
    return_vectors: bool


class VectorStore(Protocol):
    """Synchronous store operations (the engine runs them in worker threads).

    Errors: NotFound for an unknown collection, AlreadyExists on create of an existing one;
    anything else is a store failure.
    """

    #: Access clauses evaluated on the ARRAY column (a Milvus server, with an INVERTED index),
    #: else on the terms column (milvus-lite); see :mod:`services.retriever.filters`.
    array_filters: bool

    def create(self, spec: CollectionSpec) -> None:
        """Create a collection with its indexes, ready to search."""
        ...

    def describe(self, name: str) -> CollectionSpec:
        """The spec of a collection (loading it for search if needed)."""
        ...

    def count(self, name: str, expression: str = "") -> int:
        """Number of chunks stored (those matching ``expression``)."""
        ...

    def names(self) -> list[str]:
        """All collection names."""
        ...

    def drop(self, name: str) -> None:
        """Drop a collection and its chunks."""
        ...

    def upsert(self, name: str, rows: Sequence[ChunkRow], timeout: float | None) -> int:
        """Insert or replace ``rows`` by chunk id, then flush; returns rows written."""
        ...

    def delete(self, name: str, expression: str, timeout: float | None) -> int:
        """Delete the chunks matching ``expression`` (never empty), then flush; returns the count."""
        ...

    def search(self, spec: CollectionSpec, query: SearchQuery, timeout: float | None) -> list[Hit]:
        """Run ``query``; hits best first."""
        ...

    def scan(
        self, name: str, expression: str, timeout: float | None, access: bool = False
    ) -> Iterator[tuple[str, dict[str, Any], tuple[str, ...]]]:
        """(document id, metadata, access list) of every chunk matching ``expression`` ("" for
        all); the access list is read only with ``access`` (the collection has the column)."""
        ...

    def set_access(self, name: str, expression: str, access: Sequence[str], timeout: float | None) -> int:
        """Give every chunk matching ``expression`` this access list (a partial update: no
        vector is rewritten), then flush; returns how many chunks changed."""
        ...

    def chunks(self, name: str, expression: str, timeout: float | None) -> list[ChunkRow]:
        """Every chunk matching ``expression`` (no vectors), ordered by chunk id."""
        ...

    def close(self) -> None:
        """Release the store (and a milvus-lite path's lock)."""
        ...
