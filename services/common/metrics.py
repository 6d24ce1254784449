"""Prometheus metrics: the endpoint every service serves and per-RPC counters.

Each service process serves its metrics on its own HTTP port. The RPC interceptor here
counts requests by method and status code, times them, and keeps the number in flight —
the signal the autoscalers read. Component-specific metrics (batch sizes, tokens, cache
hits) are declared next to the code that updates them, all named ``ragmesh_*``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from services.common.interceptors import StreamBehavior, UnaryBehavior, method_parts, wrap_handler

# Buckets from 1 ms to 2 minutes: embeds take milliseconds, token streams take minutes.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

RPC_REQUESTS = Counter(
    "ragmesh_rpc_requests_total", "RPCs handled, by method and status code", ["component", "method", "code"]
)
RPC_LATENCY = Histogram(
    "ragmesh_rpc_duration_seconds", "RPC handling time", ["component", "method"], buckets=LATENCY_BUCKETS
)
RPC_IN_FLIGHT = Gauge("ragmesh_rpc_in_flight", "RPCs being handled now", ["component", "method"])


def start_metrics_server(host: str, port: int) -> WSGIServer | None:
    """Serve ``/metrics`` on ``host:port`` in a background thread; port 0 disables it."""
    if port == 0:
        return None
    server, _thread = start_http_server(port, addr=host)
    return server


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts, times and tracks in-flight RPCs of one component."""

    def __init__(self, component: str) -> None:
        self._component = component

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None:
            return handler
        _, method = method_parts(details.method)
        labels = (self._component, method)

        def around_unary(behavior: UnaryBehavior) -> UnaryBehavior:
            async def measured(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                with _Measurement(labels, context):
                    return await behavior(request, context)

            return measured

        def around_stream(behavior: StreamBehavior) -> StreamBehavior:
            async def measured(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                with _Measurement(labels, context):
                    async for response in behavior(request, context):
                        yield response

            return measured

        return wrap_handler(handler, around_unary, around_stream)


class _Measurement:
    """Context manager that records one RPC's in-flight time, latency and status code."""

    def __init__(self, labels: tuple[str, str], context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self._labels = labels
        self._context = context
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()
        RPC_IN_FLIGHT.labels(*self._labels).inc()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        RPC_IN_FLIGHT.labels(*self._labels).dec()
        RPC_LATENCY.labels(*self._labels).observe(time.perf_counter() - self._start)
        RPC_REQUESTS.labels(*self._labels, _code_name(self._context, exc)).inc()


def _code_name(context: grpc.aio.ServicerContext[Any, Any], exc: BaseException | None) -> str:
    if isinstance(exc, asyncio.CancelledError) or context.cancelled():
        return "CANCELLED"
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    return "OK" if exc is None else "UNKNOWN"
