"""The MCP server on the whole mesh, through Envoy, driven by the official SDK's client (Streamable
HTTP, and stdio through ``ragmesh mcp --stdio``): the same keys and tenants as gRPC, answers
with citations and progress, an ingestion job, one trace per call, and a cancelled ``ask``
that stops the generator."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ragmesh.mesh.traces import read_spans
from tests.support.mcp_client import http_session, stdio_session, structured, text_of
from tests.support.mesh_cli import UpProcess
from tests.support.metrics import scrape, until_metrics, value
from tests.support.tenant_mesh import COLLECTION, OTHER, READER, WRITER

pytestmark = pytest.mark.integration
QUESTION = "Which port does Envoy listen on?"


def _url(mesh: UpProcess) -> str:
    return f"http://{mesh.address}/mcp"


async def test_a_missing_or_wrong_key_is_refused_at_the_http_layer(tenant_mesh: UpProcess) -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    async with httpx.AsyncClient(timeout=30) as http:
        missing = await http.post(_url(tenant_mesh), json=ping)
        wrong = await http.post(_url(tenant_mesh), json=ping, headers={"authorization": "Bearer rmk_not_a_key"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert "missing API key" in missing.json()["error"]["message"]
    assert wrong.json()["error"]["message"] == "invalid API key"


async def test_tools_answer_with_sources_and_progress_for_the_callers_tenant(tenant_mesh: UpProcess) -> None:
    pieces: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        pieces.append(message)

    async with http_session(_url(tenant_mesh), READER) as session:
        tools = {t.name for t in (await session.list_tools()).tools}
        found = structured(await session.call_tool("search", {"query": QUESTION, "collection": COLLECTION}))
        asked = await session.call_tool(
            "ask", {"question": QUESTION, "collection": COLLECTION, "max_tokens": 24}, progress_callback=on_progress
        )
        top = found["sources"][0]
        document = structured(await session.call_tool(
            "get_document", {"collection": COLLECTION, "document_id": top["document_id"]}))  # fmt: skip
        listed = structured(await session.call_tool("list_collections", {}))
        other = await session.call_tool("ask", {"question": QUESTION, "collection": "globex_docs"})
        resource = await session.read_resource(f"ragmesh://collections/{COLLECTION}")
    assert tools == {"search", "ask", "list_collections", "get_document"}  # a read-only key: no write tools
    assert top["source"].endswith(".md") and top["text"] and top["score"] > 0
    answer = structured(asked)
    assert answer["answer"] and answer["sources"] and "Sources:\n[1]" in text_of(asked)
    assert len(pieces) >= 2 and "".join(m or "" for m in pieces).strip()  # tokens arrived as progress
    assert top["chunk_id"] in {c["chunk_id"] for c in document["chunks"]}
    # The tenant's collections only (the console's tests may have added one of acme's own).
    names = {c["name"] for c in listed["collections"]}
    assert COLLECTION in names and all(name.startswith("acme_") for name in names)
    docs = next(c for c in listed["collections"] if c["name"] == COLLECTION)
    assert docs["name"] == COLLECTION and docs["documents"] >= 5 and docs["chunks"] >= docs["documents"]
    assert other.is_error and text_of(other).startswith("PERMISSION_DENIED")
    assert f'"name":"{COLLECTION}"' in resource.contents[0].text  # type: ignore[union-attr]


async def test_the_ask_call_is_one_trace_with_the_mesh(tenant_mesh: UpProcess) -> None:
    async with http_session(_url(tenant_mesh), READER) as session:
        args = {"question": "What does the retriever store?", "collection": COLLECTION, "max_tokens": 8}
        trace_id = structured(await session.call_tool("ask", args))["trace_id"]
    wanted = {
        ("mcp tools/call ask", "ragmesh-orchestrator"),
        ("ragmesh.v1.GeneratorService/Generate", "ragmesh-generator"),
    }
    seen: set[tuple[str, str]] = set()
    for _ in range(150):  # services export spans in batches: poll the file
        if tenant_mesh.traces_file.exists():
            seen = {(s.name, s.service) for s in read_spans(tenant_mesh.traces_file) if s.trace_id == trace_id}
            if wanted <= seen:
                break
        await asyncio.sleep(0.2)
    assert wanted <= seen, seen


async def test_write_keys_ingest_text_as_a_job_another_tenant_cannot_see(tenant_mesh: UpProcess) -> None:
    note = {"id": "mcp-note", "text": "The MCP server speaks Streamable HTTP at /mcp.", "metadata": {"source": "n"}}
    async with http_session(_url(tenant_mesh), WRITER) as session:
        job = structured(await session.call_tool("ingest_text", {"collection": "acme_mcp", "documents": [note]}))
        for _ in range(600):  # the worker runs it; poll with a bound
            job = structured(await session.call_tool("get_job", {"job_id": job["job_id"]}))
            if job["state"] in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.1)
        found = structured(await session.call_tool("search", {"query": "Streamable HTTP", "collection": "acme_mcp"}))
    assert job["state"] == "succeeded" and job["documents_done"] == 1, job
    assert found["sources"][0]["document_id"] == "mcp-note"
    async with http_session(_url(tenant_mesh), OTHER) as session:
        hidden = await session.call_tool("get_job", {"job_id": job["job_id"]})
    assert hidden.is_error and text_of(hidden).startswith("NOT_FOUND")


async def test_sessions_stay_on_their_replica_through_envoy(tenant_mesh: UpProcess) -> None:
    # Two orchestrators behind least-request balancing: every call of every session must
    # reach the replica holding it (a stray one would be answered 404 "Session not found").
    for _ in range(4):
        async with http_session(_url(tenant_mesh), READER) as session:
            for _ in range(3):
                assert not (await session.call_tool("list_collections", {})).is_error


async def test_a_cancelled_ask_stops_the_generation(tenant_mesh: UpProcess) -> None:
    ports = [port for _, port in tenant_mesh.replicas["generator"]]
    name = "ragmesh_generator_finished_total"
    before = sum(value(scrape(port), name, reason="cancelled") for port in ports)
    started = asyncio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    async with http_session(_url(tenant_mesh), READER) as session:
        args = {"question": "Describe every component in detail.", "collection": COLLECTION, "max_tokens": 400}
        call = asyncio.create_task(session.call_tool("ask", args, progress_callback=on_progress))
        async with asyncio.timeout(120):
            await started.wait()  # tokens are flowing
        call.cancel()  # the SDK sends notifications/cancelled
        with pytest.raises(asyncio.CancelledError):
            await call
    for _ in range(300):
        if sum(value(scrape(port), name, reason="cancelled") for port in ports) == before + 1:
            break
        await asyncio.sleep(0.1)
    assert sum(value(scrape(port), name, reason="cancelled") for port in ports) == before + 1
    for port in ports:
        await until_metrics(port, {"ragmesh_rpc_in_flight": 0}, component="generator", method="Generate")


async def test_stdio_through_ragmesh_mcp_reaches_the_mesh(tenant_mesh: UpProcess) -> None:
    async with stdio_session(tenant_mesh.address, WRITER) as session:
        tools = {t.name for t in (await session.list_tools()).tools}
        found = structured(await session.call_tool("search", {"query": QUESTION, "collection": COLLECTION}))
    assert tools == {"search", "ask", "list_collections", "get_document", "ingest_text", "get_job"}
    assert found["sources"][0]["source"].endswith(".md")
