"""OpenTelemetry tracing: one setup function and gRPC interceptors for servers and clients.

The interceptors here carry the W3C trace context in gRPC metadata themselves, for unary
and streaming calls alike: OpenTelemetry's own gRPC instrumentation has split streaming
calls into separate traces, and one trace must span client -> orchestrator -> embedder,
retriever and generator, streams included.

Export: OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, JSON lines to the file named by
``RAGMESH_TRACES_FILE``, the console when ``OTEL_TRACES_EXPORTER=console``. Without any of
them spans are still made (trace ids appear in answers and logs) but go nowhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import IO, Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
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

TRACER_NAME = "ragmesh"
UNTRACED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
_setup_lock = threading.Lock()


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span as one JSON object per line (for local development)."""

    def __init__(self, path: str) -> None:
        self._file: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in shutdown
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(json.loads(span.to_json()), separators=(",", ":")) + "\n" for span in spans)
        with self._lock:
            self._file.write(lines)
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._file.close()


def setup_tracing(service_name: str, environ: Mapping[str, str] | None = None) -> TracerProvider:
    """Install the process-wide tracer provider for ``service_name`` with its exporters."""
    env = os.environ if environ is None else environ
    with _setup_lock:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            return current  # already set up in this process (tests run servers in-process)
        resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", f"ragmesh-{service_name}")})
        provider = TracerProvider(resource=resource)
        for exporter in _exporters(env):
            provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
        trace.set_tracer_provider(provider)
        return provider


def _exporters(env: Mapping[str, str]) -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporters.append(OTLPSpanExporter())  # reads the OTEL_EXPORTER_OTLP_* variables itself
    if env.get("RAGMESH_TRACES_FILE"):
        exporters.append(JsonLinesSpanExporter(env["RAGMESH_TRACES_FILE"]))
    if env.get("OTEL_TRACES_EXPORTER", "").lower() == "console":
        exporters.append(ConsoleSpanExporter())
    return exporters


def shutdown_tracing() -> None:
    """Flush and stop the exporters (called when a service exits)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def tracer() -> trace.Tracer:
    """The ragmesh tracer (a proxy that follows the provider once one is installed; made
    once, because asking the provider for a tracer on every span costs real CPU per RPC)."""
    return _TRACER


_TRACER = trace.get_tracer(TRACER_NAME)


def current_trace_id() -> str:
    """The current trace id as 32 hex characters, or "" outside any span."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


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
