"""Reading a collection through the facade, over fake components: pages of documents sorted
by id, a name filter that keeps the page full, one document's chunks in order, and the
checks (the caller's collection, a known document, sane page sizes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.common.errors import InvalidArgument, NotFound, PermissionDenied
from services.common.principal import Principal, bind_principal
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Document
from services.orchestrator.core.ingest.state import IngestBatch
from tests.support.fake_ports import Core

NAMES = ["alpha-notes", "beta-guide", "gamma-notes", "delta-notes", "epsilon"]


async def _core() -> Core:
    core = Core()

    async def batches() -> AsyncIterator[IngestBatch]:
        documents = [Document(n, f"Envoy text of {n}. " * 60, {"source": f"docs/{n}.md"}) for n in NAMES]
        yield IngestBatch("docs", documents)

    async for _ in core.facade.ingest(batches(), Deadline(None)):
        pass
    return core


async def test_documents_come_in_pages_sorted_by_id() -> None:
    core = await _core()
    first, token = await core.facade.list_documents("docs", (2, ""), "", Deadline(None))
    second, end = await core.facade.list_documents("docs", (10, token), "", Deadline(None))
    assert [d.document_id for d in first] == ["alpha-notes", "beta-guide"] and token == "beta-guide"
    assert [d.document_id for d in second] == ["delta-notes", "epsilon", "gamma-notes"] and end == ""
    assert all(d.chunks >= 1 and d.source == f"docs/{d.document_id}.md" for d in [*first, *second])


async def test_a_name_filter_keeps_pages_full_and_matches_the_source_too() -> None:
    core = await _core()
    page, token = await core.facade.list_documents("docs", (2, ""), "NOTES", Deadline(None))
    rest, end = await core.facade.list_documents("docs", (2, token), "NOTES", Deadline(None))
    assert [d.document_id for d in page] == ["alpha-notes", "delta-notes"] and token == "delta-notes"
    assert [d.document_id for d in rest] == ["gamma-notes"] and end == ""
    by_source, _ = await core.facade.list_documents("docs", (10, ""), "docs/eps", Deadline(None))
    assert [d.document_id for d in by_source] == ["epsilon"]


async def test_a_document_is_its_chunks_in_order() -> None:
    core = await _core()
    document = await core.facade.get_document("docs", "beta-guide", Deadline(None))
    ids = [c.chunk_id for c in document.chunks]
    assert document.source == "docs/beta-guide.md" and len(ids) > 1 and ids == sorted(ids)
    with pytest.raises(NotFound, match="no document 'nope'"):
        await core.facade.get_document("docs", "nope", Deadline(None))
    with pytest.raises(InvalidArgument, match="page_size"):
        await core.facade.list_documents("docs", (5000, ""), "", Deadline(None))


async def test_another_tenants_collection_is_not_read() -> None:
    core = await _core()

    async def as_other() -> None:
        bind_principal(Principal("other", ("theirs_*",), write=False))
        await core.facade.list_documents("docs", (10, ""), "", Deadline(None))

    with pytest.raises(PermissionDenied):
        await asyncio.create_task(as_other())
