"""Ingestion of raw files over fake ports with the real parsers: structure-aware chunks and
their metadata, unchanged documents skipped, changed ones replaced, bad files reported
while the rest of the batch is indexed, and a sync deleting documents whose files are gone."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator

from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Chunking, ChunkRecord, Document, IngestProgress
from services.orchestrator.core.ingest.state import IngestBatch
from services.parsing import ParsedDocument, ParseLimits, ParserPool, parse
from tests.support import documents as build
from tests.support.documents import Heading
from tests.support.fake_ports import Core

MARKDOWN = (
    "# Guide\n\n## Docking\n\nThe docking port is on deck three.\n\n## Power\n\n"
    + " ".join(f"power{i}." for i in range(100))
).encode()


class InlineParser:
    """The real parser in a thread (the pool's isolation is tested with ParserPool below)."""

    def __init__(self) -> None:
        self.calls = 0

    async def parse(self, content: bytes, media_type: str | None, file_name: str | None) -> ParsedDocument:
        self.calls += 1
        return await asyncio.to_thread(parse, content, media_type, file_name, ParseLimits())


def _pdf() -> bytes:
    pages = [["Welcome aboard."], ["The airlock code is 4711."], ["Oxygen is checked daily."]]
    return build.pdf(pages, outline=[Heading("Intro", 1), Heading("Safety", 2)])


def _files() -> list[Document]:
    return list(_built_files())


@functools.cache
def _built_files() -> tuple[Document, ...]:
    """Built once: a DOCX is a zip whose entries carry the time they were written, so a file
    rebuilt a second later has other bytes (and another content hash)."""
    docx = build.word([("h1", "Crew"), ("p", "The captain is Ada."), ("table", [["role", "name"], ["cook", "Bo"]])])
    return (
        Document("manual.pdf", content=_pdf(), file_name="manual.pdf", metadata={"team": "ops"}),
        Document("crew.docx", content=docx, file_name="crew.docx"),
        Document("guide.md", content=MARKDOWN, file_name="guide.md"),
    )


async def _run(core: Core, documents: list[Document], sync: str = "") -> list[IngestProgress]:
    async def stream() -> AsyncIterator[IngestBatch]:
        yield IngestBatch("docs", documents, Chunking(40, 4), sync_source_prefix=sync)

    return [progress async for progress in core.ingestor.run(stream(), Deadline(60.0))]


def _chunks(core: Core, document_id: str) -> list[ChunkRecord]:
    return sorted(
        (c for c in core.retriever.stored["docs"].values() if c.document_id == document_id), key=lambda c: c.chunk_id
    )


def _core() -> Core:
    core = Core()
    core.ingestor.parser = InlineParser()
    return core


async def test_parsed_files_are_chunked_by_structure_with_their_metadata() -> None:
    core = _core()
    final = (await _run(core, _files()))[-1]
    assert (final.documents_done, final.documents_failed, final.pages_done) == (3, 0, 3)
    airlock = next(c for c in _chunks(core, "manual.pdf") if "4711" in c.text)
    assert airlock.metadata["page"] == 2 and airlock.metadata["section"] == "Safety"
    assert airlock.metadata["source"] == "manual.pdf" and airlock.metadata["team"] == "ops"
    assert airlock.metadata["content_type"] == "application/pdf" and len(airlock.metadata["content_hash"]) == 64
    table = next(c for c in _chunks(core, "crew.docx") if "cook" in c.text)
    assert "role | name" in table.text and table.metadata["section"] == "Crew"  # rows kept together
    guide = _chunks(core, "guide.md")
    docking = next(c for c in guide if "deck three" in c.text)
    assert docking.metadata["section"] == "Guide / Docking" and "page" not in docking.metadata
    power = [c for c in guide if "power" in c.text]
    assert len(power) >= 3 and all(len(c.text.split()) <= 40 for c in power)  # a long paragraph is cut
    assert all(c.metadata["section"] == "Guide / Power" for c in power)


async def test_unchanged_documents_are_skipped_and_a_changed_one_is_replaced() -> None:
    core = _core()
    await _run(core, [*_files(), Document("note", "a plain text note.")])
    before = dict(core.retriever.stored["docs"])
    embeds, parses = len(core.embedder.calls), core.ingestor.parser.calls  # type: ignore[union-attr]
    again = (await _run(core, [*_files(), Document("note", "a plain text note.")]))[-1]
    assert (again.documents_unchanged, again.documents_done, again.chunks_done) == (4, 4, 0)
    assert len(core.embedder.calls) == embeds and core.ingestor.parser.calls == parses  # type: ignore[union-attr]
    assert core.retriever.stored["docs"] == before

    changed = Document("guide.md", content=b"# Guide\n\nOnly one line now.", file_name="guide.md")
    final = (await _run(core, [*_files()[:2], changed]))[-1]
    assert (final.documents_unchanged, final.documents_done) == (2, 3)
    assert [c.text for c in _chunks(core, "guide.md")] == ["Guide\n\nOnly one line now."]
    assert _chunks(core, "manual.pdf") == [c for c in before.values() if c.document_id == "manual.pdf"]


async def test_other_chunking_settings_reindex_an_unchanged_document() -> None:
    core = _core()
    await _run(core, _files()[:1])

    async def stream() -> AsyncIterator[IngestBatch]:
        yield IngestBatch("docs", _files()[:1], Chunking(30, 0))

    final = [p async for p in core.ingestor.run(stream(), Deadline(60.0))][-1]
    assert (final.documents_unchanged, final.documents_done) == (0, 1)


async def test_bad_files_are_reported_by_name_and_the_good_ones_indexed() -> None:
    pool = ParserPool(1, ParseLimits(max_pages=10))
    core = Core()
    core.ingestor.parser = pool
    bad = [
        Document("broken.pdf", content=_pdf()[:300], file_name="broken.pdf"),
        Document("locked.pdf", content=build.encrypted_pdf(_pdf()), file_name="locked.pdf"),
        Document("fake.pdf", content=b"<html><body><p>hello</p></body></html>", file_name="fake.pdf"),
        Document("long.pdf", content=build.blank_pdf(11), file_name="long.pdf"),
        Document("both", text="text", content=b"bytes"),
        Document("hash", text="text", metadata={"content_hash": "x"}),
    ]
    try:
        progress = await _run(core, [*bad, *_files()])
    finally:
        await pool.close()
    final = progress[-1]
    assert (final.documents_done, final.documents_failed) == (3, 6)
    reasons = {e.document_id: e.reason for p in progress for e in p.errors}
    assert reasons["broken.pdf"].startswith("broken.pdf: the PDF is corrupt or truncated")
    assert "encrypted" in reasons["locked.pdf"] and "the content is HTML" in reasons["fake.pdf"]
    assert "max_pages" in reasons["long.pdf"] and "not both" in reasons["both"]
    assert "'content_hash' is reserved" in reasons["hash"]
    assert {c.document_id for c in core.retriever.stored["docs"].values()} == {"manual.pdf", "crew.docx", "guide.md"}


async def test_a_sync_deletes_the_documents_whose_files_are_gone() -> None:
    core = _core()

    def file(name: str, folder: str = "kb") -> Document:
        return Document(
            name, content=b"# T\n\nabout " + name.encode(), file_name=name, metadata={"source": f"{folder}/{name}"}
        )

    await _run(core, [file("a.md"), file("b.md"), file("c.md", folder="elsewhere")])
    final = (await _run(core, [file("a.md")], sync="kb/"))[-1]
    assert (final.documents_unchanged, final.documents_deleted) == (1, 1)
    assert {c.document_id for c in core.retriever.stored["docs"].values()} == {"a.md", "c.md"}
    assert final.collection_version == 2  # one bump for the first ingestion, one for the deletion
