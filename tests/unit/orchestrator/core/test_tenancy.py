"""Tenant isolation in the orchestrator's core: queries, ingestion, deletes and listings on
another tenant's collection, job and batch ids readable only by their tenant, caches that
never mix tenants (fake ports; the principal bound as the auth interceptor binds it)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest

from services.common.errors import NotFound, PermissionDenied
from services.common.principal import Principal, bind_principal
from services.orchestrator.config import CoreConfig
from services.orchestrator.core.access import owner_tag
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Document, QueryInput
from services.orchestrator.core.facade import Orchestrator
from services.orchestrator.core.ingest.state import IngestBatch
from services.orchestrator.core.ports import Ports
from services.orchestrator.wiring import build_core
from tests.support.fake_ports import FakeEmbedder, FakeGenerator, FakeRetriever

T = TypeVar("T")
ACME = Principal("acme", ("acme_*",), write=True)
GLOBEX = Principal("globex", ("globex_docs",), write=False)


def _as(principal: Principal, call: Callable[[], T]) -> T:
    """``call`` in a context whose caller is ``principal`` (each RPC has its own context)."""
    context = contextvars.copy_context()
    context.run(bind_principal, principal)
    return context.run(call)


async def _as_async(principal: Principal, call: Callable[[], Awaitable[T]]) -> T:
    """The coroutine of ``call`` run to its end as a task whose caller is ``principal``."""
    context = contextvars.copy_context()
    context.run(bind_principal, principal)
    return await asyncio.create_task(_awaited(call), context=context)


async def _awaited(call: Callable[[], Awaitable[T]]) -> T:
    return await call()


def _engine() -> Orchestrator:
    ports = Ports(FakeEmbedder(), FakeRetriever(), FakeGenerator())
    return build_core(CoreConfig(), ports=ports)


async def _ingest(engine: Orchestrator, collection: str) -> None:
    async def batches() -> AsyncIterator[IngestBatch]:
        yield IngestBatch(collection, [Document("d", "Envoy listens on port 8080.")])

    async for _ in engine.ingest(batches(), Deadline(None)):
        pass


async def test_a_tenant_reads_and_writes_only_its_own_collections() -> None:
    engine = _engine()
    await _as_async(ACME, lambda: _ingest(engine, "acme_docs"))
    await _ingest(engine, "globex_docs")  # auth off: the operator's own ingestion
    assert _as(ACME, lambda: engine.resolve(QueryInput("q", "acme_docs"))).scope.startswith("acme/")
    with pytest.raises(PermissionDenied, match="may not use collection 'globex_docs'"):
        _as(ACME, lambda: engine.resolve(QueryInput("q", "globex_docs")))
    with pytest.raises(PermissionDenied, match="read-only"):
        await _as_async(GLOBEX, lambda: _ingest(engine, "globex_docs"))
    with pytest.raises(PermissionDenied):
        await _as_async(GLOBEX, lambda: engine.delete_documents("globex_docs", ["d"], Deadline(None)))
    listed = await _as_async(ACME, lambda: engine.collections(Deadline(None)))
    assert [c.name for c in listed] == ["acme_docs"]  # another tenant's collection is not even listed


async def test_the_same_question_is_cached_per_tenant() -> None:
    engine = _engine()
    both = Principal("both", ("*",), write=True)
    await _as_async(both, lambda: _ingest(engine, "shared"))
    first = _as(both, lambda: engine.resolve(QueryInput("q", "shared")))
    other = _as(Principal("other", ("*",), write=True), lambda: engine.resolve(QueryInput("q", "shared")))
    assert first.cache_material("1") != other.cache_material("1")


async def test_job_and_batch_ids_are_readable_only_by_their_tenant() -> None:
    engine = _engine()
    acme_job = f"{owner_tag(ACME)}-0123"
    with pytest.raises(NotFound, match="no ingestion job"):
        await _as_async(GLOBEX, lambda: engine.job(acme_job))
    with pytest.raises(NotFound, match="no query batch"):
        await _as_async(GLOBEX, lambda: engine.batch(acme_job, False))
    assert owner_tag(ACME) != owner_tag(GLOBEX) and "acme" not in owner_tag(ACME)
