"""The orchestrator's pipeline with every component in this process: the same models, the
same store code, the same engines — reached through the core's ports directly, no gRPC,
no Envoy. The baseline of the end-to-end benchmarks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from pathlib import Path
from typing import Protocol

from ragmesh.client import files
from ragmesh.vocabulary import FinishReason, SearchMode, TextDelta
from services.embedder.__main__ import load_embedder
from services.embedder.config import EmbedderConfig
from services.embedder.engine import Embedder, Kind
from services.generator.__main__ import load_generator
from services.generator.backend import ChatTurn
from services.generator.config import GeneratorConfig
from services.generator.engine import Generator
from services.generator.sequence import Delta
from services.generator.validation import SamplingRequest
from services.orchestrator.adapters.redis.guard import RedisGuard
from services.orchestrator.config import OrchestratorConfig
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import ChunkRecord, Document, Filter, Hit, Sampling, Turn
from services.orchestrator.core.ingest.ingestor import Ingestor
from services.orchestrator.core.ingest.state import IngestBatch
from services.orchestrator.core.ports import (
    CollectionFacts,
    EmbedderFacts,
    GenerationDone,
    GeneratorFacts,
    Ports,
    SearchQuery,
    StoredDocument,
    TokenCounts,
    TokenSpans,
)
from services.orchestrator.core.query.cache import AnswerCache, CollectionVersions
from services.orchestrator.core.query.pipeline import QueryPipeline
from services.retriever.__main__ import open_retriever
from services.retriever.backend import ChunkRow, Metric, Mode
from services.retriever.config import RetrieverConfig
from services.retriever.engine import Retriever, SearchRequest
from services.retriever.filters import Clause, FilterOp

_MODES = {
    SearchMode.AUTO: None,
    SearchMode.DENSE: Mode.DENSE,
    SearchMode.SPARSE: Mode.SPARSE,
    SearchMode.HYBRID: Mode.HYBRID,
}
_OPS = {op.name: op for op in FilterOp}


class _Closable(Protocol):
    """A started backend: the embedder, the retriever's store or the generator."""

    async def close(self) -> None: ...


def _clauses(filters: Sequence[Filter]) -> list[Clause]:
    return [Clause(f.field, _OPS.get(f.op), f.value, tuple(f.values)) for f in filters]


class LocalEmbedder:
    """EmbedderPort over the embedder engine."""

    def __init__(self, engine: Embedder) -> None:
        self.engine = engine

    async def embed(self, texts: Sequence[str], query: bool, deadline: Deadline) -> list[list[float]]:
        embeddings = await self.engine.embed(texts, Kind.QUERY if query else Kind.DOCUMENT, truncate=query)
        return [list(map(float, vector)) for vector in embeddings.vectors]

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
            _MODES[query.mode], query.return_vectors,
        )  # fmt: skip
        hits, _ = await self.engine.search(request, deadline.remaining())
        return [Hit(h.chunk_id, h.document_id, h.text, h.metadata, h.score, h.vector) for h in hits]

    async def ensure_collection(self, name: str, dimension: int, metric: str, deadline: Deadline) -> None:
        await self.engine.create_collection(
            name, dimension=dimension, metric=Metric(metric), index=None, full_text=True, if_not_exists=True
        )

    async def upsert(self, collection: str, chunks: Sequence[ChunkRecord], deadline: Deadline) -> None:
        rows = [ChunkRow(c.chunk_id, c.document_id, c.text, dict(c.metadata), c.vector) for c in chunks]
        await self.engine.upsert(collection, rows, deadline.remaining())

    async def delete(
        self, collection: str, document_ids: Sequence[str], filters: Sequence[Filter], deadline: Deadline
    ) -> int:
        return await self.engine.delete(collection, document_ids, _clauses(filters), deadline.remaining())

    async def collections(self, deadline: Deadline) -> list[CollectionFacts]:
        return [
            CollectionFacts(i.spec.name, i.count, i.spec.dimension, i.spec.full_text)
            for i in await self.engine.list_collections()
        ]

    async def list_documents(
        self, collection: str, document_ids: Sequence[str], page_size: int, page_token: str, deadline: Deadline
    ) -> tuple[list[StoredDocument], str]:
        documents, token = await self.engine.list_documents(
            collection, document_ids, page_size, page_token, deadline.remaining()
        )
        return [StoredDocument(d.document_id, d.content_hash, d.source, d.chunks) for d in documents], token


class LocalGenerator:
    """GeneratorPort over the generator engine."""

    def __init__(self, engine: Generator) -> None:
        self.engine = engine

    async def generate(
        self, turns: Sequence[Turn], sampling: Sampling, deadline: Deadline
    ) -> AsyncGenerator[TextDelta | GenerationDone, None]:
        request = SamplingRequest(
            sampling.max_new_tokens, sampling.temperature, sampling.top_p, sampling.top_k, sampling.seed,
            sampling.stop, sampling.repetition_penalty,
        )  # fmt: skip
        chat = [ChatTurn(t.role.value, t.content) for t in turns]
        async for event in self.engine.generate(chat, request, deadline.remaining()):
            if isinstance(event, Delta):
                yield TextDelta(event.text, event.tokens)
            else:
                reason = FinishReason(event.reason.value)
                yield GenerationDone(reason, event.prompt_tokens, event.completion_tokens)

    async def count_tokens(self, texts: Sequence[str], turns: Sequence[Turn], deadline: Deadline) -> TokenCounts:
        counts, prompt = await self.engine.count_tokens(list(texts), [ChatTurn(t.role.value, t.content) for t in turns])
        return TokenCounts(counts, prompt)

    async def facts(self, deadline: Deadline) -> GeneratorFacts:
        info = self.engine.info()
        return GeneratorFacts(info.model_name, info.context_length)


class InProcessPipeline:
    """Embedder, retriever and generator loaded here, under the orchestrator's pipeline."""

    def __init__(self, store_path: Path) -> None:
        self.store_path = store_path
        self.config = OrchestratorConfig.from_env({})
        #: What start() opened so far: close() closes exactly these, even after a failed start.
        self._backends: list[_Closable] = []

    async def start(self) -> None:
        """Load the models, open the store, warm up."""
        embedder = await asyncio.to_thread(load_embedder, EmbedderConfig.from_env({}))
        self._backends.append(embedder)
        await embedder.start()
        retriever = await asyncio.to_thread(
            open_retriever, RetrieverConfig.from_env({"RAGMESH_RETRIEVER_URI": str(self.store_path)})
        )
        self._backends.append(retriever)
        generator = await asyncio.to_thread(load_generator, GeneratorConfig.from_env({}))
        self._backends.append(generator)
        await generator.start()
        self.ports = Ports(LocalEmbedder(embedder), LocalRetriever(retriever), LocalGenerator(generator))
        versions = CollectionVersions(RedisGuard("", 0.1, 0.0))
        self.pipeline = QueryPipeline(self.ports, AnswerCache(RedisGuard("", 0.1, 0.0), 0, 0, 1), versions, None)
        self.ingestor = Ingestor(self.ports.embedder, self.ports.retriever, versions, self.config.ingest)

    async def ingest(self, corpus: Path, collection: str) -> None:
        """Index the corpus like the orchestrator's Ingest does."""
        documents = [Document(d.id, d.text, dict(d.metadata)) for d in files.load([corpus]).documents]

        async def batches() -> AsyncIterator[IngestBatch]:
            yield IngestBatch(collection, documents)

        async for _ in self.ingestor.run(batches(), Deadline(None)):
            pass

    async def close(self) -> None:
        """Stop the models and close the store (whichever of them start() got to)."""
        backends, self._backends = self._backends, []
        await asyncio.gather(*(backend.close() for backend in backends))
