"""The values of one ingestion (a message's batch, the running counters) and how its
documents and values are cut into groups the components accept."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ragmesh.vocabulary import FilterOp
from ragmesh.vocabulary.limits import MAX_IN_VALUES
from services.orchestrator.core.domain import Chunking, Document, DocumentError, Filter, IngestProgress


@dataclass
class IngestBatch:
    """One message's worth of documents."""

    collection: str
    documents: Sequence[Document]
    chunking: Chunking = field(default_factory=Chunking)
    #: After the ingestion, delete the collection's documents whose ``source`` starts with
    #: this prefix and that were not in it ("" = no sync; only the first batch's counts).
    sync_source_prefix: str = ""


@dataclass
class IngestState:
    """Counters of one ingestion, and errors not yet reported."""

    documents_total: int = 0
    documents_done: int = 0
    documents_failed: int = 0
    chunks_total: int = 0
    chunks_done: int = 0
    version: int = 0
    documents_unchanged: int = 0
    documents_deleted: int = 0
    pages_done: int = 0
    pending_errors: list[DocumentError] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    #: Every document id received, indexed or not (a sync keeps them all).
    received: set[str] = field(default_factory=set)

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
            documents_unchanged=self.documents_unchanged,
            pages_done=self.pages_done,
            documents_deleted=self.documents_deleted,
        )


def by_size(texts: list[str], max_chars: int) -> Iterable[list[str]]:
    """Consecutive runs of texts holding at most ``max_chars`` characters (or one text)."""
    part: list[str] = []
    size = 0
    for text in texts:
        if part and size + len(text) > max_chars:
            yield part
            part, size = [], 0
        part.append(text)
        size += len(text)
    if part:
        yield part


def groups(documents: Iterable[Document], size: int) -> Iterable[list[Document]]:
    group: list[Document] = []
    for document in documents:
        group.append(document)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def none_of(field: str, values: Sequence[str]) -> list[Filter]:
    """``field`` NOT_IN ``values``, as ANDed clauses of at most MAX_IN_VALUES values."""
    return [
        Filter(field, FilterOp.NOT_IN, values=tuple(values[first : first + MAX_IN_VALUES]))
        for first in range(0, len(values), MAX_IN_VALUES)
    ]
