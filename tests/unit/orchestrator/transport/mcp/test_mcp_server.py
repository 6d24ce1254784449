"""The MCP server over fake ports, served by uvicorn on loopback with the whole HTTP surface
and driven by the SDK's own client: tools and their schemas, progress while ``ask`` generates,
tool errors naming the argument, keys and tenants, resources, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from services.common.quota import QuotaSettings
from tests.support.mcp_client import http_session, structured, text_of
from tests.support.served_site import READER, WRITER, Served, start_served


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    running = await start_served()
    try:
        yield running
    finally:
        await running.server.stop(grace=5.0)


async def test_tools_are_listed_with_schemas_and_write_tools_only_for_write_keys(served: Served) -> None:
    async with http_session(served.url, WRITER) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == {"search", "ask", "list_collections", "get_document", "ingest_text", "get_job"}
    assert tools["search"].input_schema["required"] == ["query"]
    assert "description" in tools["ask"].input_schema["properties"]["conversation"]
    async with http_session(served.url, READER) as session:
        names = {t.name for t in (await session.list_tools()).tools}
        refused = await session.call_tool("ingest_text", {"collection": "acme_docs", "documents": []})
    assert names == {"search", "ask", "list_collections", "get_document"}
    assert refused.is_error and text_of(refused).startswith("INVALID_ARGUMENT: name: no tool 'ingest_text'")


async def test_search_and_ask_return_sources_and_ask_streams_progress(served: Served) -> None:
    served.generator.script = ["Envoy", "listens", "on", "8080", "[1]."]
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    async with http_session(served.url, READER) as session:
        found = await session.call_tool("search", {"query": "Which port does Envoy use?", "collection": "acme_docs"})
        asked = await session.call_tool(
            "ask", {"question": "Which port does Envoy use?", "collection": "acme_docs", "top_k": 1},
            progress_callback=on_progress,
        )  # fmt: skip
    sources = structured(found)["sources"]
    assert sources[0]["document_id"] == "envoy" and sources[0]["source"] == "envoy.md"
    assert "[1] envoy.md" in text_of(found)
    answer = structured(asked)
    assert answer["answer"] == "Envoy listens on 8080 [1]." and answer["sources"][0]["number"] == 1
    assert text_of(asked).startswith("Envoy listens on 8080 [1].\n\nSources:\n[1] envoy.md")
    assert [m for _, m in seen] == ["Envoy", " listens", " on", " 8080", " [1]."]
    assert [d for d, _ in seen] == [1, 2, 3, 4, 5]


async def test_bad_arguments_are_tool_errors_naming_the_argument(served: Served) -> None:
    async with http_session(served.url, WRITER) as session:
        calls = {
            "question": await session.call_tool("ask", {"question": "  "}),
            "top_k": await session.call_tool("search", {"query": "q", "top_k": 500}),
            "filters[0].op": await session.call_tool("search", {"query": "q", "filters": [{"field": "a", "op": "~"}]}),
            "search_mode": await session.call_tool("search", {"query": "q", "search_mode": "fuzzy"}),
            "conversation[0].role": await session.call_tool(
                "ask", {"question": "q", "conversation": [{"role": "system", "content": "x"}]}
            ),
            "documents[0].text": await session.call_tool(
                "ingest_text", {"collection": "acme_docs", "documents": [{"id": "a", "text": ""}]}
            ),
            "colour": await session.call_tool("list_collections", {"colour": "red"}),
        }
        still_works = await session.call_tool("list_collections", {})  # the session survived them all
    for param, result in calls.items():
        assert result.is_error, param
        assert text_of(result).startswith(f"INVALID_ARGUMENT: {param}:"), text_of(result)
        assert structured(result)["param"] == param
    assert structured(still_works)["collections"][0]["name"] == "acme_docs"


async def test_keys_and_tenants(served: Served) -> None:
    async with httpx.AsyncClient() as http:
        missing = await http.post(served.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        wrong = await http.post(served.url, json={}, headers={"authorization": "Bearer rmk_wrong"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert wrong.json()["error"]["message"] == "invalid API key" and "rmk_wrong" not in wrong.text
    async with http_session(served.url, READER) as session:
        other = await session.call_tool("search", {"query": "q", "collection": "globex_docs"})
        listed = await session.call_tool("list_collections", {})
    assert other.is_error and text_of(other).startswith("PERMISSION_DENIED: tenant acme may not use")
    assert structured(listed)["collections"] == [
        {"name": "acme_docs", "documents": 2, "documents_more": False, "chunks": 2, "version": 1}
    ]


async def test_ingest_text_submits_a_job_that_get_job_follows(served: Served) -> None:
    documents = [{"id": "n1", "text": "A new note.", "metadata": {"source": "note.txt"}}]
    async with http_session(served.url, WRITER) as session:
        args = {"collection": "acme_new", "documents": documents}
        submitted = structured(await session.call_tool("ingest_text", args))
        again = structured(await session.call_tool("get_job", {"job_id": submitted["job_id"]}))
        unknown = await session.call_tool("get_job", {"job_id": "acme.nope"})
    assert submitted["state"] == "pending" and submitted["documents_total"] == 1
    assert again["job_id"] == submitted["job_id"] and len(served.queue.sent) == 1
    assert unknown.is_error and text_of(unknown).startswith("NOT_FOUND")


async def test_resources_list_and_read_collections_and_documents(served: Served) -> None:
    async with http_session(served.url, READER) as session:
        listed = await session.list_resources()
        templates = await session.list_resource_templates()
        collection = await session.read_resource("ragmesh://collections/acme_docs")
        document = await session.read_resource("ragmesh://collections/acme_docs/documents/redis")
        with pytest.raises(MCPError, match="PERMISSION_DENIED"):
            await session.read_resource("ragmesh://collections/globex_docs")
        with pytest.raises(MCPError, match="INVALID_ARGUMENT: unknown resource"):
            await session.read_resource("ragmesh://elsewhere/x")
    assert [str(r.uri) for r in listed.resources] == ["ragmesh://collections/acme_docs"]
    assert {t.uri_template for t in templates.resource_templates} == {
        "ragmesh://collections/{name}", "ragmesh://collections/{name}/documents/{id}"}  # fmt: skip
    assert '"documents_count":2' in collection.contents[0].text  # type: ignore[union-attr]
    assert '"document_id":"redis"' in document.contents[0].text  # type: ignore[union-attr]


async def test_a_cancelled_ask_stops_the_generation(served: Served) -> None:
    served.generator.script = ["word"] * 50
    served.generator.release = asyncio.Event()  # the generation waits before its first word
    async with http_session(served.url, READER) as session:
        call = asyncio.create_task(session.call_tool("ask", {"question": "Which port?", "collection": "acme_docs"}))
        async with asyncio.timeout(10):
            while not served.generator.prompts:
                await asyncio.sleep(0.01)
        call.cancel()  # the SDK sends notifications/cancelled
        with pytest.raises(asyncio.CancelledError):
            await call
        async with asyncio.timeout(10):
            while served.generator.closed == 0:
                await asyncio.sleep(0.01)
    assert served.generator.finished == 0


async def test_the_tenants_rate_applies_to_tool_calls() -> None:
    running = await start_served(QuotaSettings(rate=0.001, burst=3))
    try:
        async with http_session(running.url, READER) as session:
            results = [await session.call_tool("list_collections", {}) for _ in range(4)]
    finally:
        await running.server.stop(grace=5.0)
    # tools/list is not called here; initialize and ping are free: list_collections x3 meet the burst of 3
    assert not results[0].is_error and results[-1].is_error
    assert text_of(results[-1]).startswith("RESOURCE_EXHAUSTED")


async def test_the_tenants_stream_quota_applies_to_ask() -> None:
    running = await start_served(QuotaSettings(streams=1))
    running.generator.release = asyncio.Event()  # the first answer waits before its first word
    try:
        async with http_session(running.url, READER) as first, http_session(running.url, READER) as second:
            args = {"question": "Which port?", "collection": "acme_docs"}
            holding = asyncio.create_task(first.call_tool("ask", args))
            async with asyncio.timeout(10):
                while not running.generator.prompts:
                    await asyncio.sleep(0.01)
            refused = await second.call_tool("ask", args)
            running.generator.release.set()
            answered = await holding
    finally:
        await running.server.stop(grace=5.0)
    assert refused.is_error and text_of(refused).startswith("RESOURCE_EXHAUSTED")
    assert not answered.is_error
