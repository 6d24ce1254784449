"""``ragmesh mcp --stdio`` started as a desktop client starts it (the SDK's stdio client),
bridging to an HTTP MCP server over fake ports: the tools, a streamed answer's progress, a
tool error, and a wrong key refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError

from tests.support.mcp_client import stdio_session, structured, text_of
from tests.support.served_site import READER, Served, start_served


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    running = await start_served()
    try:
        yield running
    finally:
        await running.server.stop(grace=5.0)


async def test_stdio_serves_the_same_tools_with_progress(served: Served) -> None:
    served.generator.script = ["Port", "8080", "[1]."]
    pieces: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        pieces.append(message)

    async with stdio_session(served.url, READER) as session:
        names = {t.name for t in (await session.list_tools()).tools}
        answer = await session.call_tool("ask", {"question": "Which port?", "collection": "acme_docs"},
                                         progress_callback=on_progress)  # fmt: skip
        refused = await session.call_tool("search", {"query": "q", "collection": "globex_docs"})
    assert names == {"search", "ask", "list_collections", "get_document"}
    assert structured(answer)["answer"] == "Port 8080 [1]." and pieces == ["Port", " 8080", " [1]."]
    assert refused.is_error and text_of(refused).startswith("PERMISSION_DENIED")


async def test_a_wrong_key_fails_the_handshake_and_the_log_says_why(served: Served, tmp_path: Path) -> None:
    log = tmp_path / "stderr.txt"
    with log.open("w") as errlog, pytest.raises(ExceptionGroup) as caught:
        async with stdio_session(served.url, "rmk_wrong_key", errlog) as session:
            await session.list_tools()
    assert caught.group_contains(MCPError)
    assert "refused the request (HTTP 401): invalid API key" in log.read_text()
