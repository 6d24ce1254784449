"""The orchestrator's domain model: plain dataclasses, no protobuf.

Transports (the gRPC servicer, the OpenAI-compatible HTTP app) translate their messages
into these and back; the pipeline, ingestion and the ports speak only these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ragmesh.vocabulary import (
    CacheLevel,
    ContextMode,
    ConversationQuery,
    FilterOp,
    FinishReason,
    RerankMethod,
    Role,
    Scalar,
    SearchMode,
    TextDelta,
)

Metadata = Mapping[str, Any]


@dataclass(frozen=True)
class Filter:
    """A structured clause ``field op value`` (or ``values`` for IN / NOT_IN)."""

    field: str
    op: FilterOp
    value: Scalar | None = None
    values: tuple[Scalar, ...] = ()


@dataclass(frozen=True)
class Sampling:
    """Generation parameters; None leaves the generator's default."""

    max_new_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    repetition_penalty: float | None = None


@dataclass(frozen=True)
class Turn:
    """One message of a conversation."""

    role: Role
    content: str


@dataclass(frozen=True)
class QueryInput:
    """A query as a transport received it: nothing checked, nothing defaulted (None / 0 /
    empty mean "the server's default")."""

    query: str
    collection: str = ""
    top_k: int = 0
    filters: Sequence[Filter] = ()
    history: Sequence[Turn] = ()
    rerank: RerankMethod | None = None
    candidates: int = 0
    mmr_lambda: float | None = None
    sampling: Sampling = field(default_factory=Sampling)
    search_mode: SearchMode = SearchMode.AUTO
    conversation_query: ConversationQuery | None = None
    context: ContextMode | None = None
    bypass_cache: bool = False
    retrieval_only: bool = False
    caller_id: str = ""
    variant: str = ""


@dataclass(frozen=True)
class Hit:
    """A chunk found by the retriever; ``score`` is higher-is-better."""

    chunk_id: str
    document_id: str
    text: str
    metadata: Metadata
    score: float
    vector: Sequence[float] | None = None


@dataclass(frozen=True)
class Source:
    """A chunk an answer cites as ``[number]``."""

    number: int
    chunk_id: str
    document_id: str
    text: str
    metadata: Metadata
    score: float


@dataclass(frozen=True)
class Usage:
    """Generator tokens of one answer (zero when served from the cache)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class StageTimings:
    """Milliseconds per pipeline stage (0 for stages that did not run)."""

    cache_ms: float = 0.0
    embed_ms: float = 0.0
    search_ms: float = 0.0
    rerank_ms: float = 0.0
    prompt_ms: float = 0.0
    generate_ms: float = 0.0
    first_token_ms: float = 0.0
    total_ms: float = 0.0


@dataclass(frozen=True)
class SourcesEvent:
    """The sources the answer cites (always the first event)."""

    sources: list[Source]
    cache: CacheLevel
    variant: str
    trace_id: str


@dataclass(frozen=True)
class Citation:
    """An answer sentence (character span) and the number of the source supporting it."""

    start: int
    end: int
    source_number: int
    score: float


@dataclass(frozen=True)
class FinalEvent:
    """The end of an answer: usage, timings, finish reason, what the conversation cost."""

    usage: Usage
    timings: StageTimings
    finish_reason: FinishReason
    history_turns_dropped: int = 0
    retrieval_query: str = ""
    citations: tuple[Citation, ...] = ()
    #: The model cited nothing; ``cited_answer`` is its text with the markers added.
    citations_added: bool = False
    cited_answer: str = ""


Event = SourcesEvent | TextDelta | FinalEvent


@dataclass
class Answer:
    """A whole answer, folded from the events of one query."""

    text: str = ""
    sources: list[Source] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    timings: StageTimings = field(default_factory=StageTimings)
    cache: CacheLevel = CacheLevel.NONE
    variant: str = ""
    trace_id: str = ""
    finish_reason: FinishReason = FinishReason.UNSPECIFIED
    history_turns_dropped: int = 0
    retrieval_query: str = ""
    citations: tuple[Citation, ...] = ()
    citations_added: bool = False
    cited_answer: str = ""

    def add(self, event: Event) -> None:
        """Fold one event into the answer."""
        if isinstance(event, SourcesEvent):
            self.sources, self.cache, self.variant, self.trace_id = (
                event.sources,
                event.cache,
                event.variant,
                event.trace_id,
            )
        elif isinstance(event, TextDelta):
            self.text += event.text
        else:
            self.usage, self.timings, self.finish_reason = event.usage, event.timings, event.finish_reason
            self.history_turns_dropped, self.retrieval_query = event.history_turns_dropped, event.retrieval_query
            self.citations, self.citations_added = event.citations, event.citations_added
            self.cited_answer = event.cited_answer


@dataclass(frozen=True)
class Document:
    """A document to index: its ``text``, or raw file ``content`` the orchestrator parses
    (type from ``media_type``, else from ``file_name`` and the bytes)."""

    id: str
    text: str = ""
    metadata: Metadata = field(default_factory=dict)
    content: bytes = b""
    media_type: str = ""
    file_name: str = ""
    #: Principals that may read it (``user:NAME``, ``group:NAME``); empty: the whole tenant.
    access: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chunking:
    """Chunk size and overlap in embedder tokens (0 = the server's default)."""

    chunk_tokens: int = 0
    overlap_tokens: int = 0


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk to store, with its vector."""

    chunk_id: str
    document_id: str
    text: str
    metadata: Metadata
    vector: Sequence[float]
    #: Its document's access list as stored (``("*",)``: public).
    access: tuple[str, ...] = ()


@dataclass(frozen=True)
class DocumentError:
    """A document that was not indexed, and why."""

    document_id: str
    reason: str


@dataclass(frozen=True)
class IngestProgress:
    """Progress of one ingestion; ``errors`` holds the rejections since the last message."""

    documents_total: int = 0
    documents_done: int = 0
    documents_failed: int = 0
    chunks_total: int = 0
    chunks_done: int = 0
    errors: tuple[DocumentError, ...] = ()
    done: bool = False
    collection_version: int = 0
    #: Skipped as stored already with the same content and settings (also in documents_done).
    documents_unchanged: int = 0
    #: Pages of paged documents (PDF) parsed so far.
    pages_done: int = 0
    #: Documents a sync deleted because their files are gone.
    documents_deleted: int = 0


@dataclass(frozen=True)
class CollectionSummary:
    """A collection as the orchestrator reports it."""

    name: str
    chunks: int
    version: int
    dimension: int
    full_text: bool


@dataclass(frozen=True)
class ComponentHealth:
    """One component's health as the orchestrator sees it."""

    component: str
    status: str
    address: str = ""
    detail: str = ""
