"""DNS-rebinding protection of /mcp: with auth off only loopback hosts are answered (421 for
another Host, 403 for another Origin), with keys on any host unless a list is configured; the
setting's parsing. Over a real HTTP server (fake ports) and the SDK's client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from services.common.config import ConfigError
from services.orchestrator.config import OrchestratorConfig
from services.orchestrator.transport.mcp.rebinding import LOOPBACK_HOSTS, rebinding_settings
from tests.support.mcp_client import http_session
from tests.support.served_site import READER, Served, start_served

INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}  # fmt: skip
HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


Start = Callable[..., Awaitable[Served]]


@pytest.fixture
async def serve() -> AsyncIterator[Start]:
    started: list[Served] = []

    async def start(**options: Any) -> Served:
        started.append(await start_served(**options))
        return started[-1]

    yield start
    for served in started:
        await served.server.stop(grace=5.0)


async def _initialize(url: str, headers: dict[str, str]) -> int:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(url, json=INITIALIZE, headers=HEADERS | headers)
    return response.status_code


async def test_with_auth_off_only_loopback_hosts_are_answered(serve: Start) -> None:
    served = await serve(auth=False)
    assert await _initialize(served.url, {"host": "evil.example:8090"}) == 421
    assert await _initialize(served.url, {"origin": "http://evil.example"}) == 403
    assert await _initialize(served.url, {"host": f"localhost:{served.server.port}"}) == 200
    async with http_session(served.url, None) as session:  # the SDK's client, as addressed by ragmesh up
        assert (await session.list_tools()).tools


async def test_with_keys_any_host_unless_a_list_is_configured(serve: Start) -> None:
    keyed = await serve()
    key = {"authorization": f"Bearer {READER}"}
    assert await _initialize(keyed.url, key | {"host": "rag.example.com"}) == 200
    listed = await serve(mcp_allowed_hosts=("rag.example.com",))
    assert await _initialize(listed.url, key | {"host": "rag.example.com"}) == 200
    assert await _initialize(listed.url, key | {"host": "other.example.com"}) == 421


def test_the_settings_follow_auth_and_the_configured_list() -> None:
    assert rebinding_settings(None, auth_enabled=False).allowed_hosts == list(LOOPBACK_HOSTS)
    assert not rebinding_settings(None, auth_enabled=True).enable_dns_rebinding_protection
    assert not rebinding_settings((), auth_enabled=False).enable_dns_rebinding_protection
    listed = rebinding_settings(("rag.example.com:*",), auth_enabled=True)
    assert listed.allowed_origins == ["http://rag.example.com:*", "https://rag.example.com:*"]


def test_the_setting_is_parsed_and_bad_hosts_name_the_variable() -> None:
    def hosts(value: str) -> tuple[str, ...] | None:
        return OrchestratorConfig.from_env({"RAGMESH_ORCHESTRATOR_MCP_ALLOWED_HOSTS": value}).mcp_allowed_hosts

    assert OrchestratorConfig.from_env({}).mcp_allowed_hosts is None
    assert hosts("*") == ()
    listed = hosts("rag.example.com, rag.internal:8090,10.0.0.5:*")
    assert listed == ("rag.example.com", "rag.internal:8090", "10.0.0.5:*")
    for bad in ("rag example", "a,,b", "http://rag.example.com"):
        with pytest.raises(ConfigError, match="RAGMESH_ORCHESTRATOR_MCP_ALLOWED_HOSTS"):
            hosts(bad)
