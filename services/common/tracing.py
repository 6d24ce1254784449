"""OpenTelemetry tracing: one setup function, the tracer and the current trace id (the gRPC
interceptors that carry the context across hops are :mod:`services.common.grpc_tracing`).

Export: OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, JSON lines to the file named by
``RAGMESH_TRACES_FILE``, the console when ``OTEL_TRACES_EXPORTER=console``. Without any of
them spans are still made (trace ids appear in answers and logs) but go nowhere.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from typing import IO

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)

TRACER_NAME = "ragmesh"
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
