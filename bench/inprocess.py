"""The orchestrator's pipeline with every component in this process: the same models, the
same store code, the same servicers — called directly, no gRPC, no Envoy. The baseline of
the end-to-end benchmark."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from ragmesh.client import files
from ragmesh.client.types import document_message
from ragmesh.v1 import orchestrator_pb2
from services.common.slot import BackendSlot
from services.embedder.__main__ import load_embedder
from services.embedder.config import EmbedderConfig
from services.embedder.servicer import EmbedderServicer
from services.generator.__main__ import load_generator
from services.generator.config import GeneratorConfig
from services.generator.servicer import GeneratorServicer
from services.orchestrator.cache import AnswerCache, CollectionVersions
from services.orchestrator.clients import Components, Deadline
from services.orchestrator.config import OrchestratorConfig
from services.orchestrator.ingest import IngestBatch, Ingestor
from services.orchestrator.pipeline import QueryPipeline
from services.orchestrator.redis_store import RedisGuard
from services.retriever.__main__ import open_retriever
from services.retriever.config import RetrieverConfig
from services.retriever.servicer import RetrieverServicer


class _Closable(Protocol):
    """A started backend: the embedder, the retriever's store or the generator."""

    async def close(self) -> None: ...


class _Context:
    """The little of a gRPC servicer context the servicers use."""

    def __init__(self, timeout: float | None) -> None:
        self._deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - asyncio.get_running_loop().time()

    def cancelled(self) -> bool:
        return False

    def invocation_metadata(self) -> tuple[()]:
        return ()


class _Stream:
    """A servicer's response stream, shaped like a grpc.aio streaming call."""

    def __init__(self, responses: AsyncIterator[Any]) -> None:
        self._responses = responses

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._responses

    def cancel(self) -> bool:
        self._closing = asyncio.ensure_future(self._responses.aclose())  # type: ignore[attr-defined]
        return True


class _DirectStub:
    """Calls a servicer's methods as a stub would, without serialisation or a network."""

    def __init__(self, servicer: object) -> None:
        self._servicer = servicer

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._servicer, name)

        def call(request: Any, timeout: float | None = None, **_: Any) -> Any:
            result = method(request, _Context(timeout))
            return _Stream(result) if hasattr(result, "__aiter__") else result

        return call


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
        components = Components(
            embedder=_DirectStub(EmbedderServicer(_ready(embedder))),  # type: ignore[arg-type]
            retriever=_DirectStub(RetrieverServicer(_ready(retriever))),  # type: ignore[arg-type]
            generator=_DirectStub(GeneratorServicer(_ready(generator))),  # type: ignore[arg-type]
            health={},
            addresses={},
        )
        versions = CollectionVersions(RedisGuard("", 0.1, 0.0))
        self.pipeline = QueryPipeline(components, AnswerCache(RedisGuard("", 0.1, 0.0), 0, 0, 1), versions, None)
        self.ingestor = Ingestor(components, versions, self.config.ingest)

    async def ingest(self, corpus: Path, collection: str) -> None:
        """Index the corpus like the orchestrator's Ingest does."""
        documents = [document_message(d) for d in files.load([corpus]).documents]

        async def batches() -> AsyncIterator[IngestBatch]:
            yield IngestBatch(collection, documents, orchestrator_pb2.ChunkingOptions())

        async for _ in self.ingestor.run(batches(), Deadline(None)):
            pass

    async def close(self) -> None:
        """Stop the models and close the store (whichever of them start() got to)."""
        backends, self._backends = self._backends, []
        await asyncio.gather(*(backend.close() for backend in backends))


def _ready(backend: Any) -> BackendSlot[Any]:
    slot: BackendSlot[Any] = BackendSlot("in-process")
    slot.set(backend)
    return slot
