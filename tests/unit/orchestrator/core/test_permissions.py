"""Per-document access lists in the core (fake ports, which evaluate ARRAY_CONTAINS_ANY as the
retriever does): every read carries the caller's clause — searches (top-k stays full),
listings, one document, counts — cached answers are keyed by the principals, a new access
list takes effect at once, and bad access lists are refused naming the field."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ragmesh.vocabulary import CacheLevel, FilterOp
from services.common.errors import InvalidArgument, NotFound
from services.common.principal import ANONYMOUS, Principal
from services.orchestrator.config import CoreConfig
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Answer, Document, QueryInput
from services.orchestrator.core.facade import Orchestrator
from services.orchestrator.core.ingest.state import IngestBatch
from services.orchestrator.core.ports import Ports
from services.orchestrator.core.settings import CacheSettings
from services.orchestrator.wiring import build_core
from tests.support.fake_ports import FakeEmbedder, FakeGenerator, FakeRetriever
from tests.unit.orchestrator.core.test_tenancy import _as, _as_async

HR = Principal("acme", ("docs",), write=True, user="alice", groups=("hr",))
OTHER = Principal("acme", ("docs",), write=True, user="bob")
QUESTION = QueryInput("Which port does envoy listen on?", "docs", top_k=2, retrieval_only=False)


async def _setup() -> tuple[Orchestrator, FakeRetriever]:
    retriever = FakeRetriever()
    config = CoreConfig(cache=CacheSettings(l1_entries=64, l1_ttl_seconds=60.0, l2_ttl_seconds=60.0))
    engine = build_core(config, ports=Ports(FakeEmbedder(), retriever, FakeGenerator()))
    documents = [
        Document("salaries", "Envoy listens on port 8080 for the payroll.", access=("group:hr",)),
        Document("public", "Envoy listens on port 8080.", access=()),
        Document("notes", "Envoy port notes for everyone."),
    ]

    async def batches() -> AsyncIterator[IngestBatch]:
        yield IngestBatch("docs", documents)

    async for _ in _as(ANONYMOUS, lambda: engine.ingest(batches(), Deadline(None))):
        pass
    return engine, retriever


async def _ask(engine: Orchestrator, principal: Principal) -> Answer:
    return await _as_async(principal, lambda: engine.answer(QUESTION, Deadline(None)))


async def test_a_search_returns_only_what_the_caller_may_read_and_stays_full() -> None:
    engine, retriever = await _setup()
    hr, other = await _ask(engine, HR), await _ask(engine, OTHER)
    assert "salaries" in {s.document_id for s in hr.sources}
    assert {s.document_id for s in other.sources} == {"public", "notes"}  # top-2, both readable
    clause = retriever.searches[-1].filters[-1]
    assert (clause.field, clause.op, clause.values) == ("access", FilterOp.ARRAY_CONTAINS_ANY, ("*", "user:bob"))


async def test_an_answer_cached_for_one_caller_is_not_served_to_another() -> None:
    engine, _ = await _setup()
    await _ask(engine, HR)
    assert (await _ask(engine, HR)).cache is CacheLevel.L1
    other = await _ask(engine, OTHER)
    assert other.cache is CacheLevel.NONE and "salaries" not in {s.document_id for s in other.sources}
    revoked = Principal("acme", ("docs",), write=True, user="alice")  # the key lost group:hr
    after = await _ask(engine, revoked)
    assert after.cache is CacheLevel.NONE and "salaries" not in {s.document_id for s in after.sources}


async def test_listings_documents_and_counts_are_scoped() -> None:
    engine, _ = await _setup()
    deadline = Deadline(None)
    listed, _ = await _as_async(OTHER, lambda: engine.list_documents("docs", (0, ""), "", deadline))
    assert {d.document_id for d in listed} == {"public", "notes"}
    with pytest.raises(NotFound):
        await _as_async(OTHER, lambda: engine.get_document("docs", "salaries", deadline))
    assert (await _as_async(HR, lambda: engine.get_document("docs", "salaries", deadline))).chunks
    counts = {
        who: (await _as_async(p, lambda: engine.collections(deadline)))[0].chunks
        for who, p in (("hr", HR), ("o", OTHER))
    }
    assert counts["hr"] == counts["o"] + 1


async def test_a_new_access_list_takes_effect_for_the_next_query_cache_included() -> None:
    engine, retriever = await _setup()
    await _ask(engine, OTHER)
    embeds = len(retriever.stored["docs"])
    updated, _ = await _as_async(HR, lambda: engine.set_document_access("docs", ["salaries"], [], Deadline(None)))
    assert updated == 1 and len(retriever.stored["docs"]) == embeds
    answer = await _ask(engine, OTHER)
    assert answer.cache is CacheLevel.NONE and "salaries" in {s.document_id for s in answer.sources}
    with pytest.raises(InvalidArgument, match="access: principal 'hr' is invalid"):
        await _as_async(HR, lambda: engine.set_document_access("docs", ["salaries"], ["hr"], Deadline(None)))


async def test_a_document_with_a_bad_access_list_is_rejected_by_name() -> None:
    engine, _ = await _setup()

    async def batches() -> AsyncIterator[IngestBatch]:
        yield IngestBatch("docs", [Document("x", "text", access=("everyone",)), Document("y", "redis port")])

    progress = [p async for p in _as(ANONYMOUS, lambda: engine.ingest(batches(), Deadline(None)))]
    errors = [e for p in progress for e in p.errors]
    assert [(e.document_id, e.reason) for e in errors] == [
        ("x", "access: principal 'everyone' is invalid: use user:NAME or group:NAME")
    ]
