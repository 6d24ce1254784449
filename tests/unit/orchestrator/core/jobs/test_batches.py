"""Query batches through the core's facade, with fake components and in-memory stores: a
batch query is answered by the same facade call as a live query — its submitter's tenant
scope, experiment assignment and cache scope — and another tenant cannot read the batch."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ragmesh.vocabulary import CacheLevel, JobState
from services.common.errors import NotFound
from services.common.principal import Principal, bind_principal
from services.orchestrator.config import CoreConfig
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Document, QueryInput
from services.orchestrator.core.experiments.config import ExperimentSettings
from services.orchestrator.core.facade import Orchestrator
from services.orchestrator.core.ingest.state import IngestBatch
from services.orchestrator.core.ports import Ports
from services.orchestrator.wiring import build_core
from tests.support.fake_ports import FakeEmbedder, FakeGenerator, FakeRetriever
from tests.support.fake_stores import MemoryJobStore, MemoryTaskQueue

TENANT_A = Principal("a", ("docs",), write=True)
TENANT_B = Principal("b", ("docs",), write=False)


EXPERIMENT = """
[[experiments]]
name = "chunks"
collections = ["docs"]
[[experiments.variants]]
name = "control"
ratio = 1.0
"""


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[tuple[Orchestrator, MemoryJobStore]]:
    """A facade over fake components, an experiment on "docs", in-memory jobs."""
    (tmp_path / "experiments.toml").write_text(textwrap.dedent(EXPERIMENT))
    config = CoreConfig(experiments=ExperimentSettings(file=str(tmp_path / "experiments.toml")))
    store = MemoryJobStore()
    ports = Ports(FakeEmbedder(), FakeRetriever(), FakeGenerator())
    facade = build_core(config, ports=ports, jobs=(store, MemoryTaskQueue()))
    yield facade, store
    await facade.close()


async def _ingest(core: Orchestrator) -> None:
    async def batches() -> AsyncIterator[IngestBatch]:
        yield IngestBatch("docs", [Document("d", "Envoy listens on port 8080.")])

    async for _ in core.ingest(batches(), Deadline(None)):
        pass


async def _in_context(call: Any) -> Any:
    """Run ``call`` in a task of its own (a request's context, as a transport runs it)."""
    return await asyncio.create_task(call())


async def test_a_batch_is_answered_as_its_submitters_live_query(core: tuple[Orchestrator, MemoryJobStore]) -> None:
    facade, store = core

    async def submit() -> str:
        bind_principal(TENANT_A)
        await _ingest(facade)
        return await facade.submit_batch([QueryInput("Which port does Envoy listen on?", "docs")])

    batch_id = await _in_context(submit)
    assert await _in_context(lambda: facade.job_runner().query_batch(batch_id, "w1")) is JobState.SUCCEEDED
    (result,) = await store.results(batch_id)
    assert result.answer is not None and result.answer.variant == "control"
    assert [s.document_id for s in result.answer.sources] == ["d"]
    await facade.experiments.flush()
    records = await facade.experiments.store.read("chunks")  # recorded under its experiment
    assert [(r.variant, r.cache_level) for r in records] == [("control", CacheLevel.NONE)]

    async def ask(principal: Principal) -> CacheLevel:
        bind_principal(principal)
        return (await facade.answer(QueryInput("Which port does Envoy listen on?", "docs"), Deadline(None))).cache

    # The batch filled the cache for its own tenant only.
    assert await _in_context(lambda: ask(TENANT_A)) is CacheLevel.L1
    assert await _in_context(lambda: ask(TENANT_B)) is CacheLevel.NONE


async def test_a_batch_of_another_tenant_is_not_found(core: tuple[Orchestrator, MemoryJobStore]) -> None:
    facade, _ = core

    async def submit() -> str:
        bind_principal(TENANT_A)
        return await facade.submit_batch([QueryInput("q", "docs")])

    batch_id = await _in_context(submit)

    async def read() -> None:
        bind_principal(TENANT_B)
        await facade.batch(batch_id, include_results=True)

    with pytest.raises(NotFound):
        await _in_context(read)
