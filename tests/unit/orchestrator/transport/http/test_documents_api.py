"""The documents API beside /v1/ (what the console calls) over fake ports on a real HTTP server:
collections, a collection's documents (name search, paging), a document, deletion, an
ingestion job of uploaded files, experiments; the same keys and error format as /v1/."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.served_site import READER, WRITER, Served, start_served


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    running = await start_served()
    try:
        yield running
    finally:
        await running.server.stop(grace=5.0)


def _client(served: Served, key: str | None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(base_url=served.url.removesuffix("/mcp"), headers=headers, timeout=30)


async def test_collections_documents_and_a_document(served: Served) -> None:
    async with _client(served, READER) as http:
        collections = (await http.get("/v1/collections")).json()["collections"]
        page = (await http.get("/v1/collections/acme_docs/documents", params={"page_size": 1})).json()
        rest = await http.get("/v1/collections/acme_docs/documents", params={"page_token": page["next_page_token"]})
        named = (await http.get("/v1/collections/acme_docs/documents", params={"name_contains": "REDIS"})).json()
        document = (await http.get("/v1/collections/acme_docs/documents/redis")).json()
        bad = await http.get("/v1/collections/acme_docs/documents", params={"page_size": "many"})
    assert [(c["name"], c["chunks"]) for c in collections] == [("acme_docs", 2)]
    assert [d["document_id"] for d in page["documents"]] == ["envoy"] and page["next_page_token"]
    assert [d["document_id"] for d in rest.json()["documents"]] == ["redis"]
    assert [d["document_id"] for d in named["documents"]] == ["redis"]
    assert document["source"] == "redis.md" and document["chunks"][0]["metadata"]["page"] == 2
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "page_size"


async def test_keys_tenants_and_write_access(served: Served) -> None:
    async with _client(served, None) as anonymous, _client(served, READER) as reader:
        missing = await anonymous.get("/v1/collections")
        other = await reader.get("/v1/collections/globex_docs/documents")
        read_only = await reader.delete("/v1/collections/acme_docs/documents/envoy")
    assert missing.status_code == 401 and "missing API key" in missing.json()["error"]["message"]
    assert other.status_code == 403 and "may not use collection 'globex_docs'" in other.json()["error"]["message"]
    assert read_only.status_code == 403 and "read-only" in read_only.json()["error"]["message"]


async def test_delete_a_document(served: Served) -> None:
    async with _client(served, WRITER) as http:
        deleted = (await http.delete("/v1/collections/acme_docs/documents/envoy")).json()
        left = (await http.get("/v1/collections/acme_docs/documents")).json()["documents"]
    assert deleted["chunks_deleted"] == 1 and deleted["collection_version"] >= 2
    assert [d["document_id"] for d in left] == ["redis"]


async def test_uploaded_files_become_an_ingestion_job(served: Served) -> None:
    files = [("files", ("a.md", b"# A\n\nAlpha.", "text/markdown")), ("files", ("b.html", b"<p>Beta</p>", "text/html"))]
    async with _client(served, WRITER) as http:
        submitted = await http.post("/v1/collections/acme_new/jobs", files=files)
        job = (await http.get(f"/v1/jobs/{submitted.json()['job_id']}")).json()
        empty = await http.post("/v1/collections/acme_new/jobs", json={"documents": "no"})
        unknown = await http.get("/v1/jobs/acme.nope")
    assert submitted.status_code == 202 and submitted.json()["document_ids"] == ["a.md", "b.html"]
    assert job["state"] == "pending" and job["documents_total"] == 2 and job["collection"] == "acme_new"
    assert len(served.queue.sent) == 1
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "documents"
    assert unknown.status_code == 404


async def test_experiments_are_listed_with_the_metrics(served: Served) -> None:
    async with _client(served, READER) as http:
        listed = (await http.get("/v1/experiments")).json()
        missing = await http.get("/v1/experiments/nope/report")
    assert listed["experiments"] == [] and "latency_ms" in listed["metrics"]
    assert missing.status_code == 404 and "no experiment 'nope'" in missing.json()["error"]["message"]


async def test_the_console_is_served_with_a_strict_policy(served: Served) -> None:
    async with _client(served, None) as http:
        redirect = await http.get("/ui")
        index = await http.get("/ui/")
        script = await http.get("/ui/ask.js")
    assert redirect.status_code == 308 and redirect.headers["location"] == "/ui/"
    assert index.status_code == 200 and '<label for="question">Question</label>' in index.text
    assert "script-src 'self'" in index.headers["content-security-policy"]
    assert script.headers["content-type"].startswith("text/javascript")
