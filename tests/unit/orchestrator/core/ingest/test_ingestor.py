"""Ingestion over fake ports: chunking, rejected documents, re-ingest that shrinks a
document, a write that fails half-way, and collection versions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.common.errors import InvalidArgument, Unavailable
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Chunking, Document, IngestProgress
from services.orchestrator.core.ingest.state import IngestBatch
from tests.support.fake_ports import Core

LONG = " ".join(f"word{i}." for i in range(150))  # 150 tokens for the fake embedder


async def _run(core: Core, *batches: IngestBatch) -> list[IngestProgress]:
    async def stream() -> AsyncIterator[IngestBatch]:
        for batch in batches:
            yield batch

    return [progress async for progress in core.ingestor.run(stream(), Deadline(None))]


async def test_documents_are_chunked_embedded_stored_and_bad_ones_reported() -> None:
    core = Core()
    documents = [
        Document("long", LONG, {"lang": "en"}),
        Document("", "no id"),
        Document("empty", "   "),
        Document("long", "a duplicate id"),
        Document("badmeta", "text", {"bad key": 1}),
    ]
    progress = await _run(core, IngestBatch("docs", documents, Chunking(40, 8)))
    final = progress[-1]
    assert final.done and (final.documents_total, final.documents_done, final.documents_failed) == (5, 1, 4)
    reasons = {e.document_id: e.reason for p in progress for e in p.errors}
    assert set(reasons) == {"#1", "empty", "long", "badmeta"}
    assert "duplicate" in reasons["long"] and "metadata key" in reasons["badmeta"]
    chunks = core.retriever.stored["docs"]
    assert final.chunks_done == len(chunks) > 3
    assert all(c.metadata.get("lang") == "en" and len(c.text.split()) <= 40 for c in chunks.values())
    assert final.collection_version == 1


async def test_a_shrinking_reingest_removes_the_chunks_it_no_longer_has() -> None:
    core = Core()
    await _run(core, IngestBatch("docs", [Document("d", LONG)], Chunking(40, 0)))
    before = set(core.retriever.stored["docs"])
    await _run(core, IngestBatch("docs", [Document("d", "now short.")], Chunking(40, 0)))
    after = set(core.retriever.stored["docs"])
    assert len(after) == 1 and after < before  # the first chunk id is rewritten in place


async def test_a_failed_write_leaves_the_old_version_searchable() -> None:
    core = Core()
    await _run(core, IngestBatch("docs", [Document("d", LONG)], Chunking(40, 0)))
    old = dict(core.retriever.stored["docs"])
    core.retriever.fail_with = Unavailable("the retriever went away")
    with pytest.raises(Unavailable):
        await _run(core, IngestBatch("docs", [Document("d", "replacement.")], Chunking(40, 0)))
    assert core.retriever.stored["docs"] == old


@pytest.mark.parametrize(
    ("chunking", "message"),
    [(Chunking(8, 0), "chunk_tokens must be between 16"), (Chunking(40, 40), "overlap_tokens")],
)
async def test_bad_chunking_is_an_invalid_argument(chunking: Chunking, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        await _run(Core(), IngestBatch("docs", [Document("d", "text")], chunking))


async def test_a_bad_collection_name_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="collection name"):
        await _run(Core(), IngestBatch("no way", [Document("d", "text")]))


async def test_a_message_over_the_per_message_limit_ends_the_call_and_keeps_earlier_ones() -> None:
    core = Core()
    limit = core.ingestor.settings.max_documents_per_message
    first = IngestBatch("docs", [Document("kept", "an early document.")], Chunking(40, 0))
    too_many = IngestBatch("docs", [Document(f"d{i}", "x.") for i in range(limit + 1)], Chunking(40, 0))
    with pytest.raises(InvalidArgument, match=f"message 2 holds {limit + 1} documents; the limit is {limit}"):
        await _run(core, first, too_many)
    assert {c.document_id for c in core.retriever.stored["docs"].values()} == {"kept"}
