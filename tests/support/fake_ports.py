"""In-memory fakes of the orchestrator's ports, for unit tests of the core (pipeline,
ingestion, conversations) without any server."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field

from ragmesh.vocabulary import FilterOp, FinishReason, TextDelta
from ragmesh.vocabulary.access import ACCESS_FIELD, PUBLIC
from services.common.errors import NotFound, RagmeshError, Unavailable
from services.orchestrator.config import CoreConfig
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import ChunkRecord, Filter, Hit, Sampling, Turn
from services.orchestrator.core.facade import Orchestrator
from services.orchestrator.core.ports import (
    CollectionFacts,
    EmbedderFacts,
    Embeddings,
    GenerationDone,
    GeneratorFacts,
    Ports,
    SearchQuery,
    StoredDocument,
    TokenCounts,
    TokenSpans,
)
from services.orchestrator.core.settings import CacheSettings
from services.orchestrator.wiring import build_core

VOCABULARY = ("envoy", "port", "milvus", "redis", "cache", "generator", "embedder", "listen", "8080", "balance")


def bag_of_words(text: str) -> list[float]:
    """A tiny deterministic embedding: counts of a few words, normalised."""
    words = text.lower().replace("?", " ").replace(".", " ").split()
    vector = [float(sum(w.startswith(v) for w in words)) for v in VOCABULARY] + [0.01]
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector]


def _tokens(text: str) -> TokenSpans:
    starts, ends, position = [], [], 0
    for word in text.split():
        start = text.index(word, position)
        starts.append(start)
        ends.append(start + len(word))
        position = start + len(word)
    return TokenSpans(starts, ends)


@dataclass
class FakeEmbedder:
    """Words are tokens; vectors are bags of a few words."""

    fail_with: RagmeshError | None = None
    calls: list[list[str]] = field(default_factory=list)

    async def embed(self, texts: Sequence[str], query: bool, deadline: Deadline) -> Embeddings:
        deadline.remaining()
        if self.fail_with is not None:
            raise self.fail_with
        self.calls.append(list(texts))
        return Embeddings([bag_of_words(t) for t in texts], [len(_tokens(t).starts) for t in texts])

    async def tokenize(self, texts: Sequence[str], deadline: Deadline) -> list[TokenSpans]:
        return [_tokens(t) for t in texts]

    async def facts(self, deadline: Deadline) -> EmbedderFacts:
        return EmbedderFacts(len(VOCABULARY) + 1, 64, 2, "COSINE")


@dataclass
class FakeRetriever:
    """Collections of chunks in memory; search by cosine of the fake vectors."""

    stored: dict[str, dict[str, ChunkRecord]] = field(default_factory=dict)
    fail_with: RagmeshError | None = None
    searches: list[SearchQuery] = field(default_factory=list)

    async def search(self, query: SearchQuery, deadline: Deadline) -> list[Hit]:
        deadline.remaining()
        if self.fail_with is not None:
            raise self.fail_with
        if query.collection not in self.stored:
            raise NotFound(f"collection {query.collection!r} does not exist; ingest documents into it first")
        self.searches.append(query)
        scored = [
            (sum(a * b for a, b in zip(query.vector, c.vector, strict=True)), c)
            for c in self.stored[query.collection].values()
            if matches(c, query.filters)
        ]
        scored.sort(key=lambda pair: pair[0], reverse=True)
        return [
            Hit(c.chunk_id, c.document_id, c.text, c.metadata, s, c.vector if query.return_vectors else None)
            for s, c in scored[: query.top_k]
        ]

    async def ensure_collection(self, name: str, dimension: int, metric: str, deadline: Deadline) -> None:
        self.stored.setdefault(name, {})

    async def upsert(self, collection: str, chunks: Sequence[ChunkRecord], deadline: Deadline) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        for chunk in chunks:
            self.stored[collection][chunk.chunk_id] = chunk

    async def delete(
        self, collection: str, document_ids: Sequence[str], filters: Sequence[Filter], deadline: Deadline
    ) -> int:
        stored = self.stored[collection]
        doomed = [k for k, c in stored.items() if c.document_id in document_ids and matches(c, filters)]
        for key in doomed:
            del stored[key]
        return len(doomed)

    async def collections(self, deadline: Deadline, filters: Sequence[Filter] = ()) -> list[CollectionFacts]:
        return [
            CollectionFacts(n, sum(matches(chunk, filters) for chunk in c.values()), 11, True)
            for n, c in sorted(self.stored.items())
        ]

    async def set_access(
        self, collection: str, document_ids: Sequence[str], access: Sequence[str], deadline: Deadline
    ) -> int:
        stored = self.stored[collection]
        changed = [k for k, c in stored.items() if c.document_id in document_ids]
        for key in changed:
            stored[key] = dataclasses.replace(stored[key], access=tuple(access))
        return len(changed)

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
        if collection not in self.stored:
            raise NotFound(f"collection {collection!r} does not exist")
        documents: dict[str, StoredDocument] = {}
        for chunk in self.stored[collection].values():
            if (document_ids and chunk.document_id not in document_ids) or chunk.document_id <= page_token:
                continue
            if not matches(chunk, filters):
                continue
            known = documents.get(chunk.document_id)
            documents[chunk.document_id] = StoredDocument(
                chunk.document_id,
                str(chunk.metadata.get("content_hash", "")),
                str(chunk.metadata.get("source", "")),
                (known.chunks if known else 0) + 1,
                chunk.access,
            )
        ordered = sorted(documents.values(), key=lambda d: d.document_id)
        size = page_size or 1000
        return ordered[:size], ordered[size - 1].document_id if len(ordered) > size else ""

    async def get_chunks(
        self, collection: str, document_id: str, filters: Sequence[Filter], deadline: Deadline
    ) -> list[Hit]:
        if collection not in self.stored:
            raise NotFound(f"collection {collection!r} does not exist")
        chunks = sorted(self.stored[collection].values(), key=lambda c: c.chunk_id)
        return [
            Hit(c.chunk_id, c.document_id, c.text, c.metadata, 0.0)
            for c in chunks
            if c.document_id == document_id and matches(c, filters)
        ]


def matches(chunk: ChunkRecord, filters: Sequence[Filter]) -> bool:
    """Whether ``chunk`` matches every clause, as the retriever evaluates them (the id columns
    or a metadata key; a missing key matches no clause)."""
    for clause in filters:
        if clause.field == ACCESS_FIELD:
            if clause.op is not FilterOp.ARRAY_CONTAINS_ANY:
                raise NotImplementedError(f"the retriever refuses {clause.op.name} on {ACCESS_FIELD}")
            if not set(chunk.access or (PUBLIC,)) & set(clause.values):
                return False
            continue
        found = getattr(chunk, clause.field) if clause.field in ("chunk_id", "document_id") else None
        found = chunk.metadata.get(clause.field) if found is None else found
        if found is None or not _compare(found, clause):
            return False
    return True


def _compare(found: object, clause: Filter) -> bool:
    if clause.op is FilterOp.IN:
        return found in clause.values
    if clause.op is FilterOp.NOT_IN:
        return found not in clause.values
    if clause.op is FilterOp.EQ:
        return found == clause.value
    if clause.op is FilterOp.NE:
        return found != clause.value
    raise NotImplementedError(f"the fake retriever does not compare with {clause.op.name}")


@dataclass
class FakeGenerator:
    """Answers with a script (or echoes the last user turn's first words), one word per step."""

    context_length: int = 8192
    script: list[str] | None = None
    fail_with: RagmeshError | None = None
    #: Set while a generation runs; a test can hold it with ``release``.
    release: asyncio.Event | None = None
    prompts: list[list[Turn]] = field(default_factory=list)
    closed: int = 0
    finished: int = 0
    #: The next generations fail (UNAVAILABLE, as a killed replica) after this many words each.
    fail_after: list[int] = field(default_factory=list)
    continued: int = 0

    async def generate(
        self, turns: Sequence[Turn], sampling: Sampling, deadline: Deadline, *, continue_final: bool = False
    ) -> AsyncGenerator[TextDelta | GenerationDone, None]:
        if self.fail_with is not None:
            raise self.fail_with
        self.prompts.append(list(turns))
        question = turns[-2] if continue_final else turns[-1]
        words = self.script or question.content.split()[:5]
        said = len(turns[-1].content.split()) if continue_final else 0  # greedy: the same answer goes on
        self.continued += continue_final
        words = words[said:]
        limit = sampling.max_new_tokens or len(words)
        fail = self.fail_after.pop(0) if self.fail_after else None
        try:
            for count, word in enumerate(words[:limit], start=1):
                if self.release is not None:
                    await self.release.wait()
                if fail is not None and count > fail:
                    raise Unavailable("the generator answered UNAVAILABLE: connection reset")
                deadline.remaining()
                yield TextDelta(("" if count + said == 1 else " ") + word, count)
            reason = FinishReason.LENGTH if limit < len(words) else FinishReason.EOS
            self.finished += 1
            yield GenerationDone(reason, sum(len(t.content.split()) for t in turns), min(limit, len(words)))
        finally:
            self.closed += 1

    async def count_tokens(self, texts: Sequence[str], turns: Sequence[Turn], deadline: Deadline) -> TokenCounts:
        return TokenCounts([len(t.split()) for t in texts], sum(len(t.content.split()) + 4 for t in turns))

    async def facts(self, deadline: Deadline) -> GeneratorFacts:
        return GeneratorFacts("fake", self.context_length)


@dataclass
class Core:
    """The core over fake ports, built by the composition root (L1 caching on, no Redis)."""

    embedder: FakeEmbedder = field(default_factory=FakeEmbedder)
    retriever: FakeRetriever = field(default_factory=FakeRetriever)
    generator: FakeGenerator = field(default_factory=FakeGenerator)

    def __post_init__(self) -> None:
        config = CoreConfig(cache=CacheSettings(l1_entries=64, l1_ttl_seconds=60.0, l2_ttl_seconds=60.0))
        self.facade = build_core(config, ports=Ports(self.embedder, self.retriever, self.generator))
        parts = self.facade.parts
        self.versions, self.cache = parts.versions, parts.cache
        self.pipeline, self.ingestor, self.defaults = parts.pipeline, parts.ingestor, parts.defaults


def fake_core() -> Orchestrator:
    """A facade over fresh fake ports (no Redis, no broker)."""
    return build_core(CoreConfig(), ports=Ports(FakeEmbedder(), FakeRetriever(), FakeGenerator()))
