"""The settings the core runs with: plain frozen dataclasses, built from the environment by
:mod:`services.orchestrator.config` (the same parser for the orchestrator and the worker, so
a setting means the same in both)."""

from __future__ import annotations

from dataclasses import dataclass

from ragmesh.vocabulary import ContextMode, ConversationQuery, RerankMethod
from ragmesh.vocabulary.limits import MAX_DOCUMENTS_PER_MESSAGE


@dataclass(frozen=True)
class CacheSettings:
    """The two-level answer cache."""

    l1_entries: int = 4096
    l1_ttl_seconds: float = 600.0
    l2_ttl_seconds: float = 86_400.0


@dataclass(frozen=True)
class QueryDefaults:
    """Defaults for query options a request leaves unset."""

    collection: str = "default"
    top_k: int = 4
    candidates: int = 20
    rerank: RerankMethod = RerankMethod.NONE
    mmr_lambda: float = 0.7
    max_new_tokens: int = 256
    temperature: float = 0.0
    #: How a follow-up's retrieval query is built from the conversation.
    conversation_query: ConversationQuery = ConversationQuery.CONCAT
    #: What of each retrieved chunk the model reads, and the characters ``sentences`` keeps.
    #: The context budget is on by default: on the shipped set it halved the tokens prefilled
    #: per answer with answers no worse (docs/performance.md#a-cheaper-prompt).
    context: ContextMode = ContextMode.SENTENCES
    context_chars: int = 600


@dataclass(frozen=True)
class IngestSettings:
    """Chunking and ingestion bounds."""

    chunk_tokens: int = 200
    overlap_tokens: int = 32
    embed_batch: int = 64
    max_document_chars: int = 2_000_000
    max_documents: int = 100_000
    #: Documents in one message of the Ingest stream.
    max_documents_per_message: int = MAX_DOCUMENTS_PER_MESSAGE


@dataclass(frozen=True)
class BatchSettings:
    """How a query batch runs."""

    #: Queries of one batch answered at once.
    concurrency: int = 8
