"""Plain Python types of the client API, and their conversion from the protobuf messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct

from ragmesh.v1 import common_pb2, orchestrator_pb2
from ragmesh.vocabulary import (
    CacheLevel,
    FinishReason,
    TextDelta,
)
from ragmesh.vocabulary.protobuf import (
    CACHE_LEVEL_FROM_PROTO,
    FINISH_REASON_FROM_PROTO,
)


def _cache_name(value: orchestrator_pb2.CacheLevel.ValueType) -> CacheLevel:
    return CACHE_LEVEL_FROM_PROTO.get(value, CacheLevel.NONE)


def _finish_name(value: common_pb2.FinishReason.ValueType) -> FinishReason:
    return FINISH_REASON_FROM_PROTO.get(value, FinishReason.UNSPECIFIED)


@dataclass(frozen=True)
class Source:
    """A chunk an answer cites as ``[number]``."""

    number: int
    chunk_id: str
    document_id: str
    text: str
    metadata: dict[str, Any]
    score: float


@dataclass(frozen=True)
class Usage:
    """Tokens of the generation (zero for cached answers)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Answer:
    """A whole answer with its sources."""

    text: str
    sources: list[Source]
    usage: Usage
    timings_ms: dict[str, float]
    cache: CacheLevel
    trace_id: str
    variant: str
    finish_reason: FinishReason
    #: Oldest history turns left out of the prompt (the context window was full).
    history_turns_dropped: int = 0
    #: What the retriever was asked (the follow-up with its conversation).
    retrieval_query: str = ""
    #: The model wrote no [n] marker: ``cited_text`` is ``text`` with the markers the
    #: orchestrator added ("" otherwise).
    citations_added: bool = False
    cited_text: str = ""


@dataclass(frozen=True)
class SourcesEvent:
    """First event of a streamed answer: what it will cite."""

    sources: list[Source]
    cache: CacheLevel
    trace_id: str


#: A piece of the answer's text (the vocabulary's text delta, as every layer streams it).
TokenEvent = TextDelta


@dataclass(frozen=True)
class DoneEvent:
    """Last event of a streamed answer."""

    usage: Usage
    timings_ms: dict[str, float]
    finish_reason: FinishReason
    history_turns_dropped: int = 0
    retrieval_query: str = ""
    #: The streamed text with the [n] markers the orchestrator added ("" when the model cited).
    cited_answer: str = ""


StreamEvent = SourcesEvent | TokenEvent | DoneEvent


@dataclass(frozen=True)
class Document:
    """A document to index; ``metadata`` values must be JSON (keys: letters, digits, _). Give
    ``text``, or a file's raw ``content`` for the server to parse (PDF, DOCX, XLSX, HTML,
    Markdown, CSV, text) with its ``file_name`` (its extension declares the type) or ``media_type``."""

    id: str
    text: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    content: bytes = b""
    media_type: str = ""
    file_name: str = ""
    #: Principals that may read it (``user:NAME``, ``group:NAME``); empty: the whole tenant.
    access: Sequence[str] = ()


@dataclass(frozen=True)
class IngestProgress:
    """Progress of an ingestion; ``errors`` holds (document id, reason) pairs."""

    documents_total: int
    documents_done: int
    documents_failed: int
    chunks_total: int
    chunks_done: int
    errors: list[tuple[str, str]]
    done: bool
    collection_version: int
    #: Skipped as unchanged (stored already with the same content; also in documents_done).
    documents_unchanged: int = 0
    #: Pages of PDFs parsed so far.
    pages_done: int = 0
    #: Documents a sync deleted (their files are gone).
    documents_deleted: int = 0


def source(message: orchestrator_pb2.Source) -> Source:
    """A Source from its message."""
    return Source(
        number=message.number,
        chunk_id=message.chunk_id,
        document_id=message.document_id,
        text=message.text,
        metadata=MessageToDict(message.metadata),
        score=message.score,
    )


def timings(message: orchestrator_pb2.StageTimings) -> dict[str, float]:
    """Stage timings in milliseconds by stage name."""
    return {f.name.removesuffix("_ms"): getattr(message, f.name) for f in message.DESCRIPTOR.fields}


def answer(message: orchestrator_pb2.QueryResponse) -> Answer:
    """An Answer from a QueryResponse."""
    return Answer(
        text=message.answer,
        sources=[source(s) for s in message.sources],
        usage=Usage(message.usage.prompt_tokens, message.usage.completion_tokens),
        timings_ms=timings(message.timings),
        cache=_cache_name(message.cache),
        trace_id=message.trace_id,
        variant=message.experiment_variant,
        finish_reason=_finish_name(message.finish_reason),
        history_turns_dropped=message.history_turns_dropped,
        retrieval_query=message.retrieval_query,
        citations_added=message.citations_added,
        cited_text=message.cited_answer,
    )


def stream_event(message: orchestrator_pb2.QueryStreamResponse) -> StreamEvent:
    """The client event of one QueryStream message."""
    kind = message.WhichOneof("event")
    if kind == "sources":
        return SourcesEvent(
            [source(s) for s in message.sources.sources],
            _cache_name(message.sources.cache),
            message.sources.trace_id,
        )
    if kind == "delta":
        return TextDelta(message.delta.text, message.delta.tokens)
    final = message.final
    return DoneEvent(
        Usage(final.usage.prompt_tokens, final.usage.completion_tokens),
        timings(final.timings),
        _finish_name(final.finish_reason),
        final.history_turns_dropped,
        final.retrieval_query,
        final.cited_answer,
    )


def progress(message: orchestrator_pb2.IngestProgress) -> IngestProgress:
    """IngestProgress from its message."""
    return IngestProgress(
        documents_total=message.documents_total,
        documents_done=message.documents_done,
        documents_failed=message.documents_failed,
        chunks_total=message.chunks_total,
        chunks_done=message.chunks_done,
        errors=[(e.document_id, e.reason) for e in message.errors],
        done=message.done,
        collection_version=message.collection_version,
        documents_unchanged=message.documents_unchanged,
        pages_done=message.pages_done,
        documents_deleted=message.documents_deleted,
    )


def document_message(document: Document | Mapping[str, Any]) -> orchestrator_pb2.Document:
    """The message of a Document (or of a dict with id, text and optional metadata)."""
    if isinstance(document, Mapping):
        document = Document(
            str(document.get("id", "")),
            str(document.get("text", "")),
            document.get("metadata") or {},
            content=bytes(document.get("content", b"")),
            media_type=str(document.get("media_type", "")),
            file_name=str(document.get("file_name", "")),
            access=tuple(document.get("access", ())),
        )
    metadata = Struct()
    metadata.update(dict(document.metadata))
    return orchestrator_pb2.Document(
        id=document.id,
        text=document.text,
        metadata=metadata,
        content=document.content,
        media_type=document.media_type,
        file_name=document.file_name,
        access=list(document.access),
    )
