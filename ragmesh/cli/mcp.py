"""``ragmesh mcp --stdio``: the mesh's MCP server for a desktop client that starts its servers as
processes. The SDK's stdio server transport is joined to its Streamable HTTP client transport
(``http(s)://ADDRESS/mcp``, the key sent on every request): the tools, resources, progress
and cancellation are the orchestrator's own, not a second implementation (docs/mcp.md)."""

from __future__ import annotations

import contextlib
import logging
import ssl
import sys
from typing import Any

import anyio
import click
import httpx2
from mcp.client.streamable_http import streamable_http_client
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage

from ragmesh.cli.common import fail

log = logging.getLogger("ragmesh.mcp")
#: Connect, write and pool timeouts; a streamed answer may keep a response open much longer.
TIMEOUT = httpx2.Timeout(30.0, read=600.0)


def endpoint(address: str, tls: bool) -> str:
    """The MCP URL of a mesh at ``address`` (``host:port``, or a whole ``http(s)://`` URL)."""
    if address.startswith(("http://", "https://")):
        return address
    return f"{'https' if tls else 'http'}://{address}/mcp"


def _verify(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext | bool:
    if ca is None:
        return True
    context = ssl.create_default_context(cafile=ca)
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


async def _pump(source: Any, sink: Any, done: anyio.CancelScope, where: str) -> None:
    """Forward every message of ``source`` to ``sink``; unreadable input is reported, not sent."""
    async with sink:
        async for item in source:
            if isinstance(item, SessionMessage):
                await sink.send(item)
            else:
                log.warning("%s: dropped an unreadable message: %s", where, item)
    done.cancel()  # one side closed: so does the bridge


async def _report_refusal(response: httpx2.Response) -> None:
    """Log the server's reason for a refusal (a wrong key, a quota) where the desktop client
    shows a server's log: the MCP client only says that the server answered an error."""
    if response.status_code in (401, 403, 404, 429, 503):
        await response.aread()
        try:
            reason = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            reason = response.text[:200]
        log.error("%s refused the request (HTTP %d): %s", response.url, response.status_code, reason)


async def bridge(url: str, api_key: str | None, verify: ssl.SSLContext | bool) -> None:
    """Join this process's stdin/stdout to the MCP server at ``url`` until either side closes."""
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    hooks = {"response": [_report_refusal]}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=TIMEOUT, verify=verify, event_hooks=hooks) as http,
        streamable_http_client(url, http_client=http) as (remote_read, remote_write),
        stdio_server() as (local_read, local_write),
        anyio.create_task_group() as group,
    ):
        group.start_soon(_pump, local_read, remote_write, group.cancel_scope, "from the client")
        group.start_soon(_pump, remote_read, local_write, group.cancel_scope, f"from {url}")


@click.command("mcp")
@click.option("--stdio", "stdio", is_flag=True, help="Serve MCP over stdin/stdout (how desktop clients start servers).")
@click.option("--address", "mcp_address", help="The mesh (Envoy) as host:port, or the MCP URL [default: --address].")
@click.option("--api-key", "mcp_key", help="API key [default: the global --api-key or $RAGMESH_API_KEY].")
@click.pass_context
def mcp(context: click.Context, stdio: bool, mcp_address: str | None, mcp_key: str | None) -> None:
    """The mesh's MCP server (tools search, ask, list_collections, get_document, ingest_text,
    get_job; collections as resources) for an MCP client.

    Over HTTP the orchestrator serves it itself at http://ADDRESS/mcp (Streamable HTTP);
    with --stdio this command serves it to a client that starts it as a process.
    """
    if not stdio:
        fail("only --stdio is served by this command; HTTP clients connect to http://<envoy>/mcp directly", 2)
    options = context.find_root().obj or {}
    address = mcp_address or options.get("address", "127.0.0.1:8080")
    tls_ca, tls_cert, tls_key = options.get("tls_ca"), options.get("tls_cert"), options.get("tls_key")
    url = endpoint(address, tls_ca is not None)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="ragmesh mcp: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C in a terminal: a quiet exit
        anyio.run(bridge, url, mcp_key or options.get("api_key"), _verify(tls_ca, tls_cert, tls_key))
