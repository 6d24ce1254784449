"""The core over the embedder and retriever loaded in this process (no generator: the
benchmarks of syncs and retrieval never generate) and a private Redis, built by the
composition root — what ``bench.sources_sync`` and ``bench.access_filter`` measure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path

from bench.local_ports import LocalEmbedder, LocalRetriever
from ragmesh.vocabulary import TextDelta
from services.common.errors import FailedPrecondition
from services.embedder.__main__ import load_embedder
from services.embedder.config import EmbedderConfig
from services.orchestrator.config import CoreConfig, RedisSettings
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Sampling, Turn
from services.orchestrator.core.facade import Orchestrator
from services.orchestrator.core.ports import GenerationDone, GeneratorFacts, Ports, TokenCounts
from services.orchestrator.core.settings import CacheSettings
from services.orchestrator.core.sources.config import SourceSettings
from services.orchestrator.wiring import build_core
from services.retriever.__main__ import open_retriever
from services.retriever.config import RetrieverConfig
from services.retriever.engine import Retriever
from tests.support.redis_server import RedisServer

NO_GENERATOR = "these benchmarks never generate (retrieval and ingestion only)"


class NoGenerator:
    """The generator port of a core that never generates: every call is refused."""

    def generate(
        self, turns: Sequence[Turn], sampling: Sampling, deadline: Deadline, *, continue_final: bool = False
    ) -> AsyncGenerator[TextDelta | GenerationDone, None]:
        raise FailedPrecondition(NO_GENERATOR)

    async def count_tokens(self, texts: Sequence[str], turns: Sequence[Turn], deadline: Deadline) -> TokenCounts:
        raise FailedPrecondition(NO_GENERATOR)

    async def facts(self, deadline: Deadline) -> GeneratorFacts:
        raise FailedPrecondition(NO_GENERATOR)


class LocalCore:
    """Embedder and retriever engines here, Redis in a child process, the core over them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.redis = RedisServer(workdir)
        self.closers: list[object] = []

    async def start(self) -> Orchestrator:
        self.redis.start()
        self.embedder = await asyncio.to_thread(load_embedder, EmbedderConfig.from_env({}))
        await self.embedder.start()
        env = {"RAGMESH_RETRIEVER_URI": str(self.workdir / "milvus.db")}
        self.retriever: Retriever = await asyncio.to_thread(open_retriever, RetrieverConfig.from_env(env))
        config = CoreConfig(
            redis=RedisSettings(url=self.redis.url, timeout_seconds=5.0),
            cache=CacheSettings(l1_entries=0),
            sources=SourceSettings(cache_dir=str(self.workdir / "cache")),
        )
        ports = Ports(LocalEmbedder(self.embedder), LocalRetriever(self.retriever), NoGenerator())
        self.core = build_core(config, ports=ports)
        return self.core

    async def close(self) -> None:
        await self.core.close()
        await self.embedder.close()
        await self.retriever.close()
        self.redis.stop()
