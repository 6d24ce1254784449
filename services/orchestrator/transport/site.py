"""The orchestrator's whole HTTP surface, one Starlette app: the OpenAI-compatible ``/v1/``, the
documents API beside it, the MCP server at ``/mcp`` and the web console at ``/ui/``."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata

from starlette.applications import Starlette
from starlette.routing import Route

from services.common.auth import AuthInterceptor
from services.common.slot import BackendSlot
from services.orchestrator.core.facade import Orchestrator
from services.orchestrator.transport.console.app import console_routes
from services.orchestrator.transport.http.documents_api import documents_routes
from services.orchestrator.transport.http.openai_app import create_app
from services.orchestrator.transport.mcp.server import McpServer

MCP_PATH = "/mcp"


def _version() -> str:
    try:
        return metadata.version("ragmesh")
    except metadata.PackageNotFoundError:
        return ""


def create_site(
    slot: BackendSlot[Orchestrator],
    security: AuthInterceptor | None = None,
    mcp_allowed_hosts: Sequence[str] | None = None,
) -> Starlette:
    """Every HTTP route of the orchestrator, sharing its admission (keys, tenants, quotas);
    ``mcp_allowed_hosts``: the hosts ``/mcp`` answers (None: its default, see mcp/rebinding.py)."""
    mcp = McpServer(slot, security, _version(), mcp_allowed_hosts)
    routes = [
        *documents_routes(slot, security),
        Route(MCP_PATH, mcp, methods=["GET", "POST", "DELETE"]),
        *console_routes(),
    ]
    return create_app(slot, security, routes, lifespan=mcp.lifespan)
