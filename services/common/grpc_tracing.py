"""Tracing across gRPC hops: server and client interceptors that carry the W3C trace context
in gRPC metadata themselves, for unary and streaming calls alike. OpenTelemetry's own gRPC
instrumentation has split streaming calls into separate traces, and one trace must span
client -> orchestrator -> embedder, retriever and generator, streams included.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.common.interceptors import (
    CallDone,
    StreamBehavior,
    UnaryBehavior,
    WrappingInterceptor,
    call_interceptors,
    method_parts,
    with_metadata,
)
from services.common.tracing import tracer

UNTRACED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def _rpc_attributes(full_method: str) -> dict[str, str]:
    service, method = method_parts(full_method)
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}


def _record_status(span: trace.Span, code: grpc.StatusCode | None, details: str | None = None) -> None:
    code = code or grpc.StatusCode.OK
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not grpc.StatusCode.OK:
        span.set_status(Status(StatusCode.ERROR, f"{code.name}: {details or ''}"))


class TracingServerInterceptor(WrappingInterceptor):
    """Continues the caller's trace (from metadata) in a SERVER span around each RPC —
    except health checks and reflection, which Envoy and probes call every second: tracing
    them would bury the traces worth reading."""

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        if details.method.startswith(UNTRACED_PREFIXES):
            return await continuation(details)
        return await super().intercept_service(continuation, details)

    def around_unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        name, attributes = method.lstrip("/"), _rpc_attributes(method)

        async def traced(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            with _server_span(name, attributes, context):
                return await behavior(request, context)

        return traced

    def around_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        name, attributes = method.lstrip("/"), _rpc_attributes(method)

        async def traced(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            with _server_span(name, attributes, context):
                async for response in behavior(request, context):
                    yield response

        return traced


@contextlib.contextmanager
def _server_span(
    name: str, attributes: dict[str, Any], context: grpc.aio.ServicerContext[Any, Any]
) -> Iterator[trace.Span]:
    """A SERVER span under the caller's context that ends with the call's status."""
    with tracer().start_as_current_span(
        name, context=_caller_context(context), kind=SpanKind.SERVER, attributes=attributes, record_exception=False
    ) as span:
        try:
            yield span
        finally:
            _record_status(span, _server_code(context), context.details())


def _caller_context(context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    """The trace context the caller sent in the call's metadata (W3C traceparent)."""
    return propagate.extract({key: value for key, value in (context.invocation_metadata() or ())})


def _server_code(context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode | None:
    if context.cancelled():
        return grpc.StatusCode.CANCELLED
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else None


def _trace_call(details: grpc.aio.ClientCallDetails) -> tuple[grpc.aio.ClientCallDetails, CallDone | None]:
    """Start a CLIENT span for the call and inject its context into the call's metadata."""
    method = details.method.decode() if isinstance(details.method, bytes) else str(details.method)
    span = tracer().start_span(method.lstrip("/"), kind=SpanKind.CLIENT, attributes=_rpc_attributes(method))
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))

    def end(code: grpc.StatusCode, text: str) -> None:
        _record_status(span, code, text)
        span.end()

    return with_metadata(details, carrier.items()), end


def client_interceptors() -> list[Any]:
    """Interceptors that trace every kind of call made on a channel."""
    return call_interceptors(_trace_call)
