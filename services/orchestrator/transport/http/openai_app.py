"""The OpenAI-compatible HTTP transport (``/v1/models``, ``/v1/chat/completions``,
``/v1/embeddings``): a Starlette app over the same core as the gRPC servicer, served in
the same event loop. It only translates; errors come back in OpenAI's format.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import numpy as np
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Counter, Gauge, Histogram
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Lifespan

from ragmesh.vocabulary import TextDelta
from services.common.auth import AuthInterceptor
from services.common.errors import InvalidArgument, RagmeshError
from services.common.metrics import LATENCY_BUCKETS
from services.common.principal import bind_principal
from services.common.slot import BackendSlot
from services.common.tracing import tracer
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import FinalEvent, SourcesEvent
from services.orchestrator.core.facade import Orchestrator
from services.orchestrator.transport.http.openai_responses import (
    chunk_json,
    completion_json,
    error_json,
    final_json,
    finish_json,
    models_json,
    now,
    source_json,
    usage_json,
)
from services.orchestrator.transport.http.openai_schema import parse_chat, parse_embeddings

HTTP_REQUESTS = Counter("ragmesh_http_requests_total", "OpenAI-compatible API requests", ["route", "status"])
HTTP_SECONDS = Histogram(
    "ragmesh_http_request_seconds", "OpenAI-compatible API latency (streams: to the last byte)", ["route"],
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
HTTP_IN_FLIGHT = Gauge("ragmesh_http_in_flight", "OpenAI-compatible API requests in flight", ["route"])
MAX_BODY_BYTES = 8 * 1024 * 1024
Handler = Callable[[Request, Orchestrator], Awaitable[Response]]


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidArgument(f"the request body has {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidArgument(f"the request body is not valid JSON: {error}") from None


def _error_response(error: BaseException) -> JSONResponse:
    status, body, headers = error_json(error)
    return JSONResponse(body, status_code=status, headers=headers)


def request_deadline(request: Request) -> Deadline:
    """The caller's deadline: ``X-Request-Timeout`` seconds when sent, else none."""
    raw = request.headers.get("x-request-timeout")
    try:
        return Deadline(float(raw) if raw else None)
    except ValueError:
        raise InvalidArgument(f"X-Request-Timeout must be a number of seconds, got {raw!r}") from None


async def _models(request: Request, engine: Orchestrator) -> Response:
    return JSONResponse(models_json())


async def _embeddings(request: Request, engine: Orchestrator) -> Response:
    texts, as_base64, as_query = parse_embeddings(await json_body(request))
    deadline = request_deadline(request)
    embedded = await engine.embed(texts, as_query, deadline)
    tokens = sum(embedded.token_counts)  # counted by the embedder as it embedded: no second call
    data = []
    for index, vector in enumerate(embedded.vectors):
        value: Any = base64.b64encode(np.asarray(vector, dtype=np.float32).tobytes()).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": value})
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return JSONResponse({"object": "list", "data": data, "model": "ragmesh-embedder", "usage": usage})


async def _chat(request: Request, engine: Orchestrator) -> Response:
    chat = parse_chat(await json_body(request), request.state.tenant)
    deadline = request_deadline(request)
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", now()
    if not chat.stream:
        answer = await engine.answer(chat.query, deadline)
        return JSONResponse(completion_json(answer, completion_id, created))
    spec = engine.resolve(chat.query)
    security: AuthInterceptor | None = request.state.security
    holding = security.limits.stream(request.state.tenant) if security is not None else contextlib.nullcontext()
    holding.__enter__()  # the tenant's concurrent-stream quota: QuotaExceeded (429) when full
    try:
        events = engine.query(spec, deadline)
        first = await anext(events)  # errors before the first event still get a proper HTTP status
    except BaseException:
        holding.__exit__(None, None, None)
        raise
    sse = _released(_sse(first, events, completion_id, created, chat.include_usage), holding)
    return StreamingResponse(sse, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _data(payload: Any) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n"


async def _sse(
    first: Any, events: AsyncIterator[Any], completion_id: str, created: int, include_usage: bool
) -> AsyncGenerator[str, None]:
    """Server-sent ``chat.completion.chunk`` events; a client that disconnects cancels this
    generator, which closes the pipeline's stream and so the generation."""
    async with contextlib.aclosing(events):  # type: ignore[type-var]
        try:
            async for event in _chain(first, events):
                if isinstance(event, SourcesEvent):
                    chunk = chunk_json(completion_id, created, {"role": "assistant", "content": ""})
                    chunk["sources"] = [source_json(s) for s in event.sources]
                    chunk["ragmesh"] = {"cache": event.cache.value, "trace_id": event.trace_id}
                    yield _data(chunk)
                elif isinstance(event, TextDelta):
                    yield _data(chunk_json(completion_id, created, {"content": event.text}))
                elif isinstance(event, FinalEvent):
                    final = chunk_json(completion_id, created, {}, finish_json(event.finish_reason))
                    final["ragmesh"] = final_json(event)
                    yield _data(final)
                    if include_usage:
                        usage = chunk_json(completion_id, created, {})
                        usage["choices"], usage["usage"] = [], usage_json(event.usage)
                        yield _data(usage)
        except RagmeshError as error:  # the status line is sent: the error goes in the stream
            yield _data(error_json(error)[1])
        yield "data: [DONE]\n\n"


async def _released(
    stream: AsyncGenerator[str, None], holding: contextlib.AbstractContextManager[Any]
) -> AsyncGenerator[str, None]:
    """``stream``, giving the tenant's stream slot back when it ends (however it ends)."""
    try:
        async with contextlib.aclosing(stream):
            async for item in stream:
                yield item
    finally:
        holding.__exit__(None, None, None)


async def _chain(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    yield first
    async for item in rest:
        yield item


def _admit(request: Request, security: AuthInterceptor | None) -> None:
    """Authenticate the caller and take one request from its tenant's rate (as the gRPC
    interceptor does, sharing its buckets); Unauthenticated / QuotaExceeded otherwise."""
    if security is None:
        request.state.tenant = ""
        return
    principal = security.admit(request.headers)
    bind_principal(principal)
    request.state.tenant = principal.tenant


def route(name: str, handler: Handler, slot: BackendSlot[Orchestrator], security: AuthInterceptor | None) -> Any:
    """An endpoint with one trace, metrics, admission (key, tenant rate) and the OpenAI error
    format around ``handler``."""

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        parent = propagate.extract(dict(request.headers))
        HTTP_IN_FLIGHT.labels(name).inc()
        with tracer().start_as_current_span(
            f"{request.method} {name}", context=parent, kind=SpanKind.SERVER, record_exception=False
        ) as span:
            try:
                _admit(request, security)
                request.state.security = security
                response = await handler(request, slot.get())
            except Exception as error:  # noqa: BLE001 - every error becomes OpenAI's error body
                response = _error_response(error)
            span.set_attribute("http.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
        HTTP_IN_FLIGHT.labels(name).dec()
        HTTP_REQUESTS.labels(name, str(response.status_code)).inc()
        HTTP_SECONDS.labels(name).observe(time.perf_counter() - started)
        return response

    return endpoint


def create_app(
    slot: BackendSlot[Orchestrator],
    security: AuthInterceptor | None = None,
    extra: Sequence[BaseRoute] = (),
    lifespan: Lifespan[Starlette] | None = None,
) -> Starlette:
    """The ASGI app; with ``security`` every /v1/ call but health needs a key (401 otherwise)
    and counts against its tenant's rate and stream quota (429 with Retry-After). ``extra``
    routes (the documents API, MCP, the console) are served beside them, with ``lifespan``."""

    async def health(request: Request) -> Response:
        serving = slot.ready
        return JSONResponse({"status": "SERVING" if serving else "NOT_SERVING"}, status_code=200 if serving else 503)

    routes = [
        Route("/v1/models", route("/v1/models", _models, slot, security), methods=["GET"]),
        Route("/v1/chat/completions", route("/v1/chat/completions", _chat, slot, security), methods=["POST"]),
        Route("/v1/embeddings", route("/v1/embeddings", _embeddings, slot, security), methods=["POST"]),
        Route("/v1/health", health, methods=["GET"]),
        *extra,
    ]
    return Starlette(routes=routes, lifespan=lifespan)
