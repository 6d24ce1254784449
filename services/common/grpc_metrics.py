"""Per-RPC metrics of every gRPC server: an interceptor counting requests by method and status
code, timing them, and keeping the number in flight — the signal the autoscalers read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from prometheus_client import Counter, Gauge, Histogram

from services.common.interceptors import StreamBehavior, UnaryBehavior, WrappingInterceptor, method_parts
from services.common.metrics import LATENCY_BUCKETS

RPC_REQUESTS = Counter(
    "ragmesh_rpc_requests_total", "RPCs handled, by method and status code", ["component", "method", "code"]
)
RPC_LATENCY = Histogram(
    "ragmesh_rpc_duration_seconds", "RPC handling time", ["component", "method"], buckets=LATENCY_BUCKETS
)
RPC_IN_FLIGHT = Gauge("ragmesh_rpc_in_flight", "RPCs being handled now", ["component", "method"])


class MetricsInterceptor(WrappingInterceptor):
    """Counts, times and tracks in-flight RPCs of one component."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self._component = component

    def around_unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        series = _Series(self._component, method_parts(method)[1])

        async def measured(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            with _Measurement(series, context):
                return await behavior(request, context)

        return measured

    def around_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        series = _Series(self._component, method_parts(method)[1])

        async def measured(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            with _Measurement(series, context):
                async for response in behavior(request, context):
                    yield response

        return measured


class _Series:
    """The labelled metrics of one method, looked up once instead of on every call."""

    def __init__(self, component: str, method: str) -> None:
        self.labels = (component, method)
        self.in_flight = RPC_IN_FLIGHT.labels(component, method)
        self.latency = RPC_LATENCY.labels(component, method)
        self._requests: dict[str, Any] = {}

    def count(self, code: str) -> None:
        counter = self._requests.get(code)
        if counter is None:
            counter = self._requests[code] = RPC_REQUESTS.labels(*self.labels, code)
        counter.inc()


class _Measurement:
    """Context manager that records one RPC's in-flight time, latency and status code."""

    def __init__(self, series: _Series, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self._series = series
        self._context = context
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()
        self._series.in_flight.inc()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self._series.in_flight.dec()
        self._series.latency.observe(time.perf_counter() - self._start)
        self._series.count(_code_name(self._context, exc))


def _code_name(context: grpc.aio.ServicerContext[Any, Any], exc: BaseException | None) -> str:
    if isinstance(exc, asyncio.CancelledError) or context.cancelled():
        return "CANCELLED"
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    return "OK" if exc is None else "UNKNOWN"
