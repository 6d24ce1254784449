"""The MCP server: the SDK's low-level :class:`~mcp.server.lowlevel.Server` with our tools and
resources, served over Streamable HTTP by the SDK's session manager at ``/mcp`` of the HTTP app.

- Every HTTP request is authenticated first, as ``/v1`` is: a missing or wrong key is a 401
  before any MCP message is read. The principal rides on the request (``scope["state"]``)
  and binds each session to its key (the SDK answers 404 for a session used with another).
- :class:`CallMiddleware` runs around every MCP message: one server span (its parent the
  ``traceparent`` of the message's ``_meta`` or of the HTTP request), the principal bound for
  the core, one request of the tenant's rate for each request message.
- Requests addressed to a host it does not answer are refused before any of that (421/403:
  DNS-rebinding protection, :mod:`.rebinding`).
- Errors of a tool come back as tool errors whose text starts with the status name
  (``PERMISSION_DENIED: ...``); errors of the other methods as JSON-RPC errors saying the same.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import mcp_types as types
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import Receive, Scope, Send

from services.common import errors
from services.common.auth import AuthInterceptor
from services.common.principal import ANONYMOUS, Principal, bind_principal
from services.common.slot import BackendSlot
from services.common.tracing import current_trace_id, tracer
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.facade import Orchestrator
from services.orchestrator.transport.mcp import handlers, resources, tools
from services.orchestrator.transport.mcp.rebinding import rebinding_settings
from services.orchestrator.transport.mcp.results import error_result

INSTRUCTIONS = (
    "ragmesh answers questions from indexed documents. Use list_collections to see the collections, search to "
    "find passages, ask for an answer citing its sources as [n], get_document to read a whole document."
)
#: The bound of a call that sends no ``X-Request-Timeout`` header, in seconds.
DEFAULT_CALL_SECONDS = 600.0
#: A session with no request in flight for this long is closed (the client opens another).
SESSION_IDLE_SECONDS = 30 * 60
_FREE_METHODS = frozenset({"initialize", "ping"})


class McpServer:
    """The MCP endpoint over the orchestrator in ``slot`` (an ASGI app for ``/mcp``)."""

    def __init__(
        self, slot: BackendSlot[Orchestrator], security: AuthInterceptor | None, version: str = "",
        allowed_hosts: Sequence[str] | None = None,
    ) -> None:  # fmt: skip
        self.slot, self.security = slot, security
        self.server: Server[Any] = Server(
            "ragmesh",
            version=version,
            title="ragmesh",
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_templates,
            on_read_resource=self._read_resource,
        )
        # Ours instead of the SDK's span middleware: our tracer, the HTTP request's parent too.
        self.server.middleware = [CallMiddleware(security)]
        auth_enabled = security is not None and security.authenticator.enabled
        self.manager = StreamableHTTPSessionManager(
            app=self.server, stateless=False, session_idle_timeout=SESSION_IDLE_SECONDS,
            security_settings=rebinding_settings(allowed_hosts, auth_enabled),
        )  # fmt: skip

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        """Run the session manager while the HTTP app serves (its task group holds the sessions)."""
        async with self.manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI: authenticate, then hand the request to the SDK's session manager."""
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]
        try:
            principal = self.security.authenticator.authenticate(headers) if self.security else ANONYMOUS
        except errors.RagmeshError as error:
            await _refuse(error, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        if self.security is not None and self.security.authenticator.enabled:
            token = AccessToken(token=principal.key_id, client_id=f"{principal.tenant}/{principal.key_id}", scopes=[])
            scope["user"] = AuthenticatedUser(token)  # a session answers only to the key that opened it
        await self.manager.handle_request(scope, receive, send)

    # Handlers -----------------------------------------------------------------------------

    def _call(self, ctx: ServerRequestContext[Any, Any]) -> handlers.Call:
        async def progress(done: float, message: str) -> None:
            await ctx.session.report_progress(done, None, message)

        limits = self.security.limits if self.security is not None else None
        return handlers.Call(self.slot.get(), principal_of(ctx, self.security), limits, _deadline(ctx), progress)

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools.visible_tools(principal_of(ctx, self.security).write))

    async def _call_tool(self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams) -> Any:
        try:
            call = self._call(ctx)
            tool = handlers.handler(params.name, call.principal)
            return await tool(call, params.arguments)
        except Exception as error:  # noqa: BLE001 - every failure of a tool is a tool error (cancellation is not caught)
            return error_result(error, current_trace_id())

    async def _list_resources(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return await _jsonrpc_errors(resources.list_resources(self._call(ctx)))

    async def _list_templates(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return resources.templates()

    async def _read_resource(
        self, ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        return await _jsonrpc_errors(resources.read(self._call(ctx), str(params.uri)))


async def _jsonrpc_errors(work: Any) -> Any:
    """``work``'s result; a domain error as a JSON-RPC error whose message starts with its status."""
    try:
        return await work
    except errors.RagmeshError as error:
        code = types.INVALID_PARAMS if isinstance(error, errors.InvalidArgument) else types.INTERNAL_ERROR
        raise MCPError(code, f"{error.code.value}: {error.message}", {"code": error.code.value}) from None


def principal_of(ctx: ServerRequestContext[Any, Any], security: AuthInterceptor | None) -> Principal:
    """The principal the HTTP layer authenticated for this message."""
    state = getattr(ctx.request, "state", None)
    principal = getattr(state, "principal", None)
    if isinstance(principal, Principal):
        return principal
    if security is None or not security.authenticator.enabled:
        return ANONYMOUS
    raise errors.Unauthenticated("the message came without an authenticated HTTP request")


def _deadline(ctx: ServerRequestContext[Any, Any]) -> Deadline:
    headers = getattr(ctx.request, "headers", None) or {}
    raw = headers.get("x-request-timeout")
    try:
        return Deadline(float(raw) if raw else DEFAULT_CALL_SECONDS)
    except ValueError:
        raise errors.InvalidArgument(f"X-Request-Timeout must be a number of seconds, got {raw!r}") from None


class CallMiddleware:
    """Around every MCP message: a span, the principal bound, the tenant's rate taken."""

    def __init__(self, security: AuthInterceptor | None) -> None:
        self.security = security

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        name = ctx.params.get("name") if ctx.params else None
        label = f"mcp {ctx.method}" + (f" {name}" if isinstance(name, str) else "")
        with tracer().start_as_current_span(
            label, context=_parent(ctx), kind=SpanKind.SERVER, record_exception=False
        ) as span:
            span.set_attribute("mcp.method.name", ctx.method)
            try:
                principal = principal_of(ctx, self.security)
                bind_principal(principal)
                if self.security is not None and ctx.request_id is not None and ctx.method not in _FREE_METHODS:
                    self.security.limits.take(principal.tenant)
            except errors.RagmeshError as error:
                span.set_status(Status(StatusCode.ERROR, error.code.value))
                if ctx.method == "tools/call":
                    return error_result(error, current_trace_id())
                raise MCPError(types.INVALID_REQUEST, f"{error.code.value}: {error.message}") from None
            result = await call_next(ctx)
            if isinstance(result, types.CallToolResult) and result.is_error:
                span.set_status(Status(StatusCode.ERROR, "tool error"))
            return result


def _parent(ctx: ServerRequestContext[Any, Any]) -> Any:
    """The caller's trace: the message's ``_meta`` traceparent, else the HTTP request's."""
    meta: Any = ctx.meta or {}
    if isinstance(meta, Mapping) and "traceparent" in meta:
        return propagate.extract({k: str(v) for k, v in meta.items() if isinstance(v, str)})
    headers = getattr(ctx.request, "headers", None)
    return propagate.extract(dict(headers) if headers is not None else {})


async def _refuse(error: errors.RagmeshError, send: Send) -> None:
    """The HTTP refusal of a request (401 for a missing or wrong key), as JSON."""
    status = error.code.http
    body = json.dumps({"error": {"code": error.code.value, "message": error.message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="ragmesh"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
