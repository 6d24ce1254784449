"""The orchestrator's core with every component in this process: the same models, the same
store code, the same engines — reached through the core's ports directly (no gRPC, no
Envoy), and built by the same composition root as the orchestrator. The baseline of the
end-to-end benchmarks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Protocol

from bench.local_ports import LocalEmbedder, LocalGenerator, LocalRetriever
from ragmesh.client import files
from services.embedder.__main__ import load_embedder
from services.embedder.config import EmbedderConfig
from services.generator.__main__ import load_generator
from services.generator.config import GeneratorConfig
from services.orchestrator.config import CoreConfig
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Document, Event, QueryInput
from services.orchestrator.core.ingest.state import IngestBatch
from services.orchestrator.core.ports import Ports
from services.orchestrator.core.settings import CacheSettings
from services.orchestrator.wiring import build_core
from services.retriever.__main__ import open_retriever
from services.retriever.config import RetrieverConfig


class _Closable(Protocol):
    """A started backend: the embedder, the retriever's store or the generator."""

    async def close(self) -> None: ...


class InProcessPipeline:
    """Embedder, retriever and generator loaded here, under the orchestrator's pipeline."""

    def __init__(self, store_path: Path) -> None:
        self.store_path = store_path
        # No answer cache: every query of a benchmark runs the whole pipeline.
        self.config = CoreConfig(cache=CacheSettings(l1_entries=0))
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
        # The composition root the orchestrator and the worker use, over in-process ports.
        self.core = build_core(self.config, ports=self.ports)

    async def ingest(self, corpus: Path, collection: str) -> None:
        """Index the corpus like the orchestrator's Ingest does."""
        documents = [Document(d.id, d.text, dict(d.metadata)) for d in files.load([corpus]).documents]

        async def batches() -> AsyncIterator[IngestBatch]:
            yield IngestBatch(collection, documents)

        async for _ in self.core.ingest(batches(), Deadline(None)):
            pass

    def stream(self, request: QueryInput) -> AsyncGenerator[Event, None]:
        """The events of one query, through the core's facade (as the gRPC servicer calls it)."""
        return self.core.query(self.core.resolve(request), Deadline(None))

    async def close(self) -> None:
        """Stop the models and close the store (whichever of them start() got to)."""
        if hasattr(self, "core"):
            await self.core.close()
        backends, self._backends = self._backends, []
        await asyncio.gather(*(backend.close() for backend in backends))
