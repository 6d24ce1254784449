"""The core's ports over the components' engines loaded in this process (no gRPC, no Envoy):
what the in-process baseline of the benchmarks runs the core on."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

from ragmesh.vocabulary import TextDelta
from services.embedder.engine import Embedder, Kind
from services.generator.decoding.lm import ChatTurn
from services.generator.engine import Generator
from services.generator.validation import SamplingRequest
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import ChunkRecord, Filter, Hit, Sampling, Turn
from services.orchestrator.core.ports import (
    CollectionFacts,
    EmbedderFacts,
    Embeddings,
    GenerationDone,
    GeneratorFacts,
    SearchQuery,
    StoredDocument,
    TokenCounts,
    TokenSpans,
)
from services.retriever.backend import ChunkRow, Metric
from services.retriever.engine import Retriever, SearchRequest
from services.retriever.filters import Clause


def _clauses(filters: Sequence[Filter]) -> list[Clause]:
    return [Clause(f.field, f.op, f.value, tuple(f.values)) for f in filters]


class LocalEmbedder:
    """EmbedderPort over the embedder engine."""

    def __init__(self, engine: Embedder) -> None:
        self.engine = engine

    async def embed(self, texts: Sequence[str], query: bool, deadline: Deadline) -> Embeddings:
        embedded = await self.engine.embed(texts, Kind.QUERY if query else Kind.DOCUMENT, truncate=query)
        return Embeddings([list(map(float, vector)) for vector in embedded.vectors], list(embedded.token_counts))

    async def tokenize(self, texts: Sequence[str], deadline: Deadline) -> list[TokenSpans]:
        return [TokenSpans(s.starts, s.ends) for s in await self.engine.tokenize(texts, with_offsets=True)]

    async def facts(self, deadline: Deadline) -> EmbedderFacts:
        info = self.engine.backend.info
        return EmbedderFacts(
            info.dimension, info.max_tokens, info.special_tokens, "COSINE" if info.normalized else "IP"
        )


class LocalRetriever:
    """RetrieverPort over the retriever engine."""

    def __init__(self, engine: Retriever) -> None:
        self.engine = engine

    async def search(self, query: SearchQuery, deadline: Deadline) -> list[Hit]:
        request = SearchRequest(
            query.collection, query.vector, query.top_k, _clauses(query.filters), query.text,
            query.mode, query.return_vectors,
        )  # fmt: skip
        hits, _ = await self.engine.search(request, deadline.remaining())
        return [Hit(h.chunk_id, h.document_id, h.text, h.metadata, h.score, h.vector) for h in hits]

    async def ensure_collection(self, name: str, dimension: int, metric: str, deadline: Deadline) -> None:
        await self.engine.create_collection(
            name, dimension=dimension, metric=Metric(metric), index=None, full_text=True, if_not_exists=True
        )

    async def upsert(self, collection: str, chunks: Sequence[ChunkRecord], deadline: Deadline) -> None:
        rows = [ChunkRow(c.chunk_id, c.document_id, c.text, dict(c.metadata), c.vector, c.access) for c in chunks]
        await self.engine.upsert(collection, rows, deadline.remaining())

    async def delete(
        self, collection: str, document_ids: Sequence[str], filters: Sequence[Filter], deadline: Deadline
    ) -> int:
        return await self.engine.delete(collection, document_ids, _clauses(filters), deadline.remaining())

    async def collections(self, deadline: Deadline, filters: Sequence[Filter] = ()) -> list[CollectionFacts]:
        return [
            CollectionFacts(i.spec.name, i.count, i.spec.dimension, i.spec.full_text)
            for i in await self.engine.list_collections(_clauses(filters))
        ]

    async def set_access(
        self, collection: str, document_ids: Sequence[str], access: Sequence[str], deadline: Deadline
    ) -> int:
        return await self.engine.set_access(collection, document_ids, access, deadline.remaining())

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
        documents, token = await self.engine.list_documents(
            collection, document_ids, page_size, page_token, deadline.remaining(), clauses=_clauses(filters)
        )
        found = [StoredDocument(d.document_id, d.content_hash, d.source, d.chunks, d.access) for d in documents]
        return found, token

    async def get_chunks(
        self, collection: str, document_id: str, filters: Sequence[Filter], deadline: Deadline
    ) -> list[Hit]:
        rows = await self.engine.get_chunks(collection, document_id, _clauses(filters), deadline.remaining())
        return [Hit(r.chunk_id, r.document_id, r.text, r.metadata, 0.0) for r in rows]


class LocalGenerator:
    """GeneratorPort over the generator engine."""

    def __init__(self, engine: Generator) -> None:
        self.engine = engine

    async def generate(
        self, turns: Sequence[Turn], sampling: Sampling, deadline: Deadline, *, continue_final: bool = False
    ) -> AsyncGenerator[TextDelta | GenerationDone, None]:
        request = SamplingRequest(
            sampling.max_new_tokens, sampling.temperature, sampling.top_p, sampling.top_k, sampling.seed,
            sampling.stop, sampling.repetition_penalty,
        )  # fmt: skip
        chat = [ChatTurn(t.role, t.content) for t in turns]
        async for event in self.engine.generate(chat, request, deadline.remaining(), continue_final=continue_final):
            if isinstance(event, TextDelta):
                yield event
            else:
                yield GenerationDone(event.reason, event.prompt_tokens, event.completion_tokens)

    async def count_tokens(self, texts: Sequence[str], turns: Sequence[Turn], deadline: Deadline) -> TokenCounts:
        counts, prompt = await self.engine.count_tokens(list(texts), [ChatTurn(t.role, t.content) for t in turns])
        return TokenCounts(counts, prompt)

    async def facts(self, deadline: Deadline) -> GeneratorFacts:
        info = self.engine.info()
        return GeneratorFacts(info.model_name, info.context_length)
