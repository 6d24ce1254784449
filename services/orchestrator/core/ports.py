"""What the orchestrator's core needs from the embedder, the retriever and the generator.

Small protocols over domain types; :mod:`services.orchestrator.adapters.components`
implements them with gRPC stubs (deadlines, error mapping, model facts), the in-process
benchmark with the engines themselves, and the unit tests with fakes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Protocol

from ragmesh.vocabulary import FinishReason, SearchMode, TextDelta
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import ChunkRecord, Filter, Hit, Sampling, Turn


@dataclass(frozen=True)
class EmbedderFacts:
    """What ingestion needs to know about the embedding model."""

    dimension: int
    max_tokens: int
    special_tokens: int
    #: "COSINE" or "IP".
    metric: str


@dataclass(frozen=True)
class Embeddings:
    """One vector per text, and each text's content tokens as the embedder counted them."""

    vectors: list[list[float]]
    token_counts: list[int]


@dataclass(frozen=True)
class TokenSpans:
    """Character spans of a text's content tokens."""

    starts: Sequence[int]
    ends: Sequence[int]


@dataclass(frozen=True)
class SearchQuery:
    """A search in one collection."""

    collection: str
    vector: Sequence[float]
    top_k: int
    filters: Sequence[Filter]
    text: str
    mode: SearchMode
    return_vectors: bool


@dataclass(frozen=True)
class CollectionFacts:
    """A collection as the retriever describes it."""

    name: str
    count: int
    dimension: int
    full_text: bool


@dataclass(frozen=True)
class StoredDocument:
    """A document as its stored chunks describe it."""

    document_id: str
    #: The ``content_hash`` metadata ingestion stored ("" for chunks written without one).
    content_hash: str
    #: The ``source`` metadata (the file name, for files).
    source: str
    chunks: int
    #: Its access list as stored (``("*",)``: public; empty: a collection without access lists).
    access: tuple[str, ...] = ()


@dataclass(frozen=True)
class GeneratorFacts:
    """What prompt building needs to know about the generator's model."""

    model_name: str
    context_length: int


@dataclass(frozen=True)
class TokenCounts:
    """Tokens per text (no special tokens) and of the rendered conversation."""

    text_tokens: Sequence[int]
    prompt_tokens: int


@dataclass(frozen=True)
class GenerationDone:
    """The end of a generation."""

    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


class EmbedderPort(Protocol):
    """Embeds and tokenizes texts."""

    async def embed(self, texts: Sequence[str], query: bool, deadline: Deadline) -> Embeddings:
        """One vector per text (query or document prefixing) with its token count; long texts
        are truncated for queries."""
        ...

    async def tokenize(self, texts: Sequence[str], deadline: Deadline) -> list[TokenSpans]:
        """The model's content tokens of each text, as character spans."""
        ...

    async def facts(self, deadline: Deadline) -> EmbedderFacts:
        """The model's dimension and limits (re-read now and then: models change in rollouts)."""
        ...


class RetrieverPort(Protocol):
    """Stores and searches chunks."""

    async def search(self, query: SearchQuery, deadline: Deadline) -> list[Hit]:
        """Hits best first; NotFound for an unknown collection."""
        ...

    async def ensure_collection(self, name: str, dimension: int, metric: str, deadline: Deadline) -> None:
        """Create the collection unless it exists with the same shape."""
        ...

    async def upsert(self, collection: str, chunks: Sequence[ChunkRecord], deadline: Deadline) -> None:
        """Write chunks (the same chunk id replaces the chunk)."""
        ...

    async def delete(
        self, collection: str, document_ids: Sequence[str], filters: Sequence[Filter], deadline: Deadline
    ) -> int:
        """Delete the chunks of those documents matching every filter; returns the count."""
        ...

    async def collections(self, deadline: Deadline, filters: Sequence[Filter] = ()) -> list[CollectionFacts]:
        """Every collection, sorted by name, counting the chunks that match ``filters``."""
        ...

    async def set_access(
        self, collection: str, document_ids: Sequence[str], access: Sequence[str], deadline: Deadline
    ) -> int:
        """Give every chunk of the documents this access list without re-embedding them;
        returns how many chunks changed."""
        ...

    async def list_documents(
        self,
        collection: str,
        document_ids: Sequence[str],
        page_size: int,
        page_token: str,
        deadline: Deadline,
        *,
        filters: Sequence[Filter] = (),
    ) -> tuple[list[StoredDocument], str]:
        """One page of the stored documents (all, or those ids; only those with a chunk
        matching ``filters``) sorted by id, and the next page's token ("" on the last);
        NotFound for an unknown collection."""
        ...

    async def get_chunks(
        self, collection: str, document_id: str, filters: Sequence[Filter], deadline: Deadline
    ) -> list[Hit]:
        """The chunks of one document (those matching ``filters``) in order, score 0 and no
        vectors; NotFound for an unknown collection."""
        ...


class GeneratorPort(Protocol):
    """Generates answers and counts tokens with the generator's own tokenizer."""

    def generate(
        self, turns: Sequence[Turn], sampling: Sampling, deadline: Deadline, *, continue_final: bool = False
    ) -> AsyncGenerator[TextDelta | GenerationDone, None]:
        """Deltas, then one GenerationDone; closing the iterator early stops the generation.
        With ``continue_final`` the last turn is the assistant's answer so far, to continue."""
        ...

    async def count_tokens(self, texts: Sequence[str], turns: Sequence[Turn], deadline: Deadline) -> TokenCounts:
        """Tokens of each text and of the rendered conversation."""
        ...

    async def facts(self, deadline: Deadline) -> GeneratorFacts:
        """The model's name and context window (re-read now and then)."""
        ...


@dataclass(frozen=True)
class Ports:
    """The three components, as the core sees them."""

    embedder: EmbedderPort
    retriever: RetrieverPort
    generator: GeneratorPort
