"""Real files through a real orchestrator, embedder (MiniLM) and retriever (milvus-lite):
``ragmesh ingest`` of a folder of PDF, DOCX, HTML and Markdown files with known facts on
known pages, retrieval returning each fact with its source, page and section, filters on
them, every bad-file case reported while the good files are indexed, unchanged files
skipped, a query answered while a large PDF is being parsed, and ``--sync``."""

from __future__ import annotations

import concurrent.futures
import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ragmesh.cli.ingest import ingest_files
from ragmesh.client import RagmeshClient, files, where
from ragmesh.mesh.processes import ServiceProcess
from ragmesh.v1 import retriever_pb2
from tests.support import documents as build
from tests.support.documents import HTML_PAGE, Heading
from tests.support.metrics import scrape, value, wait_for_metrics
from tests.support.retriever import Stub
from tests.support.stack import client_of, start_orchestrator, unique_collection

pytestmark = pytest.mark.integration
MAX_BYTES = 4 * 1024 * 1024
MAX_PAGES = 600
GOOD = {"handbook.pdf", "crew.docx", "station.html", "guides/notes.md"}


@pytest.fixture(scope="module")
def parsing_orchestrator(
    log_dir: Path,
    embedder_service: ServiceProcess,
    retriever_service: ServiceProcess,
    generator_service: ServiceProcess,
) -> Iterator[ServiceProcess]:
    """An orchestrator with small parse limits (so the hostile files stay small)."""
    extra = {"RAGMESH_ORCHESTRATOR_PARSE_MAX_BYTES": str(MAX_BYTES), "RAGMESH_ORCHESTRATOR_PARSE_MAX_PAGES": "600"}
    service = start_orchestrator(log_dir, embedder_service, retriever_service, generator_service, extra)
    yield service
    service.terminate()


def _handbook() -> bytes:
    pages = [
        ["Welcome to the station handbook."],
        ["Oxygen scrubbers are replaced every ninety days."],
        ["Shuttles dock at bay seven on the lower ring."],
    ]
    outline = [Heading("Operations", 1), Heading("Life support", 2, 1), Heading("Docking", 3, 1)]
    return build.pdf(pages, outline=outline, title="Handbook")


def _folder(root: Path) -> Path:
    folder = root / "kb"
    (folder / "guides").mkdir(parents=True)
    (folder / "handbook.pdf").write_bytes(_handbook())
    crew = build.word([("h1", "Crew"), ("h2", "Kitchen"), ("p", "The station cook is named Bartholomew.")])
    (folder / "crew.docx").write_bytes(crew)
    (folder / "station.html").write_text(HTML_PAGE)
    (folder / "guides" / "notes.md").write_text("# Notes\n\n## Gardens\n\nTomatoes grow in the hydroponics lab.\n")
    (folder / "truncated.pdf").write_bytes(_handbook()[:400])
    (folder / "locked.pdf").write_bytes(build.encrypted_pdf(_handbook()))
    (folder / "fake.pdf").write_text("<!doctype html><html><body><p>not a pdf</p></body></html>")
    (folder / "bomb.docx").write_bytes(build.zip_bomb_docx(64 * 1024 * 1024))
    (folder / "long.pdf").write_bytes(build.blank_pdf(MAX_PAGES + 1))
    (folder / "big.pdf").write_bytes(b"%PDF-1.7\n" + b"0" * MAX_BYTES)
    return folder


@pytest.fixture(scope="module")
def indexed(parsing_orchestrator: ServiceProcess, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, str]:
    """The folder ingested once through the CLI's code: (collection, folder, its output)."""
    folder = _folder(tmp_path_factory.mktemp("documents"))
    collection = unique_collection()
    log = folder.parent / "ingest.log"  # the CLI's summary goes to stderr
    with client_of(parsing_orchestrator) as client, log.open("w") as out, contextlib.redirect_stderr(out):
        ok = ingest_files(client, (folder,), collection)
    assert not ok  # files were rejected: exit code 1
    return collection, folder, log.read_text()


def _top(client: RagmeshClient, collection: str, question: str, *filters: object) -> dict[str, object]:
    answer = client.query(question, collection, top_k=1, retrieval_only=True, filters=list(filters))
    source = answer.sources[0]
    return {"document_id": source.document_id, "text": source.text, **source.metadata}


def test_each_fact_is_found_with_its_source_page_and_section(
    parsing_orchestrator: ServiceProcess, indexed: tuple[str, Path, str]
) -> None:
    collection, folder, _ = indexed
    with client_of(parsing_orchestrator) as client:
        docking = _top(client, collection, "Where do shuttles dock?")
        oxygen = _top(client, collection, "How often are oxygen scrubbers replaced?")
        cook = _top(client, collection, "What is the name of the station cook?")
        tomatoes = _top(client, collection, "Where do tomatoes grow?")
        on_page_3 = _top(client, collection, "oxygen scrubbers", where("page", ">=", 3))
        only_pdf = _top(client, collection, "tomatoes", where("source", "==", str(folder / "handbook.pdf")))
    assert (docking["source"], docking["page"], docking["section"]) == (
        str(folder / "handbook.pdf"),
        3,
        "Operations / Docking",
    )
    assert docking["content_type"] == "application/pdf" and "bay seven" in str(docking["text"])
    assert (oxygen["page"], oxygen["section"]) == (2, "Operations / Life support")
    assert (cook["document_id"], cook["section"]) == ("crew.docx", "Crew / Kitchen")
    assert (tomatoes["document_id"], tomatoes["section"]) == ("guides/notes.md", "Notes / Gardens")
    assert on_page_3["page"] == 3 and only_pdf["document_id"] == "handbook.pdf"


def test_every_bad_file_is_reported_and_the_good_ones_indexed(indexed: tuple[str, Path, str], stub: Stub) -> None:
    collection, _, output = indexed
    for name, reason in {
        "truncated.pdf": "corrupt or truncated",
        "locked.pdf": "encrypted",
        "fake.pdf": "the content is HTML",
        "bomb.docx": "decompression bomb",
        "long.pdf": "max_pages",
        "big.pdf": "max_bytes",
    }.items():
        assert any(name in line and reason in line and "rejected" in line for line in output.splitlines()), name
    assert "6 file(s) rejected" in output
    listed = stub.ListDocuments(retriever_pb2.ListDocumentsRequest(collection=collection), timeout=30)
    assert {d.document_id for d in listed.documents} == GOOD
    assert all(len(d.content_hash) == 64 and d.chunks >= 1 for d in listed.documents)


def test_unchanged_files_are_skipped(parsing_orchestrator: ServiceProcess, indexed: tuple[str, Path, str]) -> None:
    collection, folder, _ = indexed
    loaded = files.load(
        [folder], include=["*.pdf", "*.docx", "*.html", "*.md"], exclude=["big.pdf", "long.pdf"], raw_text=True
    )
    good = [d for d in loaded.documents if d.id in GOOD]
    with client_of(parsing_orchestrator) as client:
        final = client.ingest(good, collection)
    assert (final.documents_unchanged, final.documents_done, final.chunks_done) == (4, 4, 0)


@contextlib.contextmanager
def _parsers_frozen(service: ServiceProcess) -> Iterator[None]:
    """Stop the service's parser processes (its children) until the block ends: a parse in
    progress stays in progress, whatever the machine's speed."""
    children = psutil.Process(service.process.pid).children(recursive=True)
    assert children, "the orchestrator has no parser processes"
    for child in children:
        child.suspend()
    try:
        yield
    finally:
        for child in children:
            child.resume()


def test_a_query_is_answered_while_a_large_pdf_is_parsed(
    parsing_orchestrator: ServiceProcess, indexed: tuple[str, Path, str]
) -> None:
    collection = indexed[0]
    large = build.pdf([["Appendix page about maintenance schedules."]] * 300)  # seconds of parsing, few chunks
    port = parsing_orchestrator.metrics_port
    with client_of(parsing_orchestrator) as client, concurrent.futures.ThreadPoolExecutor(1) as pool:
        ingestion = pool.submit(
            client.ingest, [{"id": "appendix.pdf", "content": large, "file_name": "appendix.pdf"}], collection
        )
        wait_for_metrics(port, {"ragmesh_orchestrator_parsing_documents": 1.0}, polls=300, interval=0.05)
        with _parsers_frozen(parsing_orchestrator):  # the parse cannot finish meanwhile
            answer = client.query("Where do shuttles dock?", collection, top_k=1, retrieval_only=True)
            still_parsing = value(scrape(port), "ragmesh_orchestrator_parsing_documents")
        final = ingestion.result(timeout=120)
    assert answer.sources[0].document_id == "handbook.pdf"
    assert still_parsing == 1.0  # the answer came while the parse was still running
    assert final.errors == [] and final.pages_done == 300


def test_sync_deletes_the_documents_of_removed_files(
    parsing_orchestrator: ServiceProcess, indexed: tuple[str, Path, str], stub: Stub, tmp_path: Path
) -> None:
    collection, folder, _ = indexed
    request = retriever_pb2.ListDocumentsRequest(collection=collection)
    before = {d.document_id for d in stub.ListDocuments(request, timeout=30).documents}
    (folder / "guides" / "notes.md").unlink()
    for name in ("truncated.pdf", "locked.pdf", "fake.pdf", "bomb.docx", "long.pdf", "big.pdf"):
        shutil.move(folder / name, tmp_path / name)
    with client_of(parsing_orchestrator) as client:
        assert ingest_files(client, (folder,), collection, sync=True)
    after = {d.document_id for d in stub.ListDocuments(request, timeout=30).documents}
    assert "guides/notes.md" in before and after == before - {"guides/notes.md"}
