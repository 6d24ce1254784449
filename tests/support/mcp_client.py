"""The official MCP SDK's client as an agent uses it: a ``ClientSession`` over the Streamable
HTTP client (with an API key), or over stdio to ``ragmesh mcp --stdio``; and reading a tool
result's text and structured content."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any, TextIO

import httpx2
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from ragmesh.mesh.processes import ROOT, service_env

#: Bound of every HTTP exchange of the tests' client (a streamed answer included).
TIMEOUT = httpx2.Timeout(30.0, read=300.0)


@contextlib.asynccontextmanager
async def http_session(url: str, api_key: str | None = None) -> AsyncIterator[ClientSession]:
    """An initialized session with the server at ``url`` (``http://host:port/mcp``)."""
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=TIMEOUT) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write, read_timeout_seconds=300.0) as session,
    ):
        await session.initialize()
        yield session


@contextlib.asynccontextmanager
async def stdio_session(
    address: str, api_key: str | None = None, errlog: TextIO = sys.stderr
) -> AsyncIterator[ClientSession]:
    """An initialized session with ``ragmesh mcp --stdio --address ADDRESS`` started as a
    desktop client starts it (the key from the environment, as its JSON config sets it)."""
    env = {name: value for name, value in service_env().items() if name != "RAGMESH_API_KEY"}
    if api_key:
        env["RAGMESH_API_KEY"] = api_key
    args = ["-m", "ragmesh.cli", "mcp", "--stdio", "--address", address]
    params = StdioServerParameters(command=sys.executable, args=args, env=env, cwd=str(ROOT))
    async with (
        stdio_client(params, errlog=errlog) as (read, write),
        ClientSession(read, write, read_timeout_seconds=300.0) as session,
    ):
        await session.initialize()
        yield session


def text_of(result: types.CallToolResult) -> str:
    """The text of a tool result."""
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


def structured(result: types.CallToolResult) -> dict[str, Any]:
    """The structured content of a tool result (AssertionError with its text when absent)."""
    assert result.structured_content is not None, text_of(result)
    return dict(result.structured_content)
