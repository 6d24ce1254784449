"""The shared serve loop: error mapping, health, tracing continuation, metrics, shutdown."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common import errors
from services.common.channels import open_channel
from services.common.grpc_metrics import RPC_IN_FLIGHT, RPC_REQUESTS
from services.common.interceptors import call_interceptors
from services.common.server import RunningServer, StartupError
from tests.support.inprocess import generic_definition, local_settings, start_in_process

SERVICE = "test.Plumbing"
RAISES = {
    "invalid": errors.InvalidArgument("top_k must be between 1 and 100"),
    "missing": errors.NotFound("collection 'x' does not exist"),
    "full": errors.Overloaded("queue full"),
    "down": errors.Unavailable("store not open"),
    "late": errors.DeadlineExceeded("deadline passed"),
    "who": errors.Unauthenticated("no API key"),
    "nope": errors.PermissionDenied("not your tenant"),
}


async def _raise(request: bytes, context: Any) -> bytes:
    key = request.decode()
    if key in RAISES:
        raise RAISES[key]
    if key == "bug":
        raise KeyError("secret internal detail")
    if key == "slow":
        await asyncio.sleep(1.0)
    return b"ok:" + request


async def _stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield b"first"
    if request == b"bug":
        raise RuntimeError("boom in the middle")
    yield b"second"


HANDLERS = {
    "Call": grpc.unary_unary_rpc_method_handler(_raise),
    "Stream": grpc.unary_stream_rpc_method_handler(_stream),
}


@pytest.fixture
async def plumbing() -> AsyncIterator[tuple[RunningServer, grpc.aio.Channel]]:
    running, address = await start_in_process(generic_definition("plumbing", SERVICE, HANDLERS))
    channel = open_channel(address)
    yield running, channel
    await channel.close(None)
    await running.stop()


def _call(channel: grpc.aio.Channel) -> Any:
    return channel.unary_unary(f"/{SERVICE}/Call", None, None)


@pytest.mark.parametrize("key", sorted(RAISES))
async def test_domain_errors_map_to_their_status(plumbing: Any, key: str) -> None:
    running, channel = plumbing
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _call(channel)(key.encode())
    assert caught.value.code().name == RAISES[key].code.value
    assert caught.value.details() == RAISES[key].message
    assert running.health.serving


async def test_unknown_errors_are_internal_without_details(plumbing: Any) -> None:
    _, channel = plumbing
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _call(channel)(b"bug")
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (caught.value.details() or "")
    assert "Traceback" not in (caught.value.details() or "")
    assert "trace id" in (caught.value.details() or "")
    assert await _call(channel)(b"fine") == b"ok:fine"


async def test_errors_in_the_middle_of_a_stream_end_it_with_a_status(plumbing: Any) -> None:
    _, channel = plumbing
    call = channel.unary_stream(f"/{SERVICE}/Stream", None, None)(b"bug")
    assert await call.read() == b"first"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() == grpc.StatusCode.INTERNAL


async def test_health_reports_serving_for_the_server_and_each_service(plumbing: Any) -> None:
    _, channel = plumbing
    stub = health_pb2_grpc.HealthStub(channel)
    for name in ("", SERVICE):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_is_not_serving_until_the_backend_started() -> None:
    loaded = asyncio.Event()

    async def slow_start() -> None:
        await loaded.wait()

    running = RunningServer(generic_definition("slow", SERVICE, HANDLERS, start=slow_start), local_settings("embedder"))
    starting = asyncio.ensure_future(running.start())
    await asyncio.sleep(0.2)  # listening happens before the backend starts
    assert running.port != 0
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=SERVICE)
        assert (await stub.Check(request)).status == health_pb2.HealthCheckResponse.NOT_SERVING
        loaded.set()
        await starting
        assert (await stub.Check(request)).status == health_pb2.HealthCheckResponse.SERVING
    await running.stop()


async def test_shutdown_reports_not_serving_and_lets_in_flight_calls_finish() -> None:
    running, address = await start_in_process(generic_definition("drain", SERVICE, HANDLERS))
    async with grpc.aio.insecure_channel(address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        in_flight = asyncio.ensure_future(_call(channel)(b"slow"))
        await asyncio.sleep(0.2)
        stopping = asyncio.ensure_future(running.stop(grace=5.0))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert await in_flight == b"ok:slow"
        watch.cancel()  # an open Watch stream would otherwise hold the server for the grace period
        await stopping


async def test_a_taken_port_is_a_clear_startup_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = local_settings("embedder")
        settings = type(settings)(**{**settings.__dict__, "address": f"127.0.0.1:{port}"})
        running = RunningServer(generic_definition("taken", SERVICE, HANDLERS), settings)
        with pytest.raises(StartupError, match=f"127.0.0.1:{port}"):
            await running.start()


async def test_a_client_trace_continues_in_the_server(plumbing: Any, span_exporter: InMemorySpanExporter) -> None:
    _, channel = plumbing
    span_exporter.clear()
    with trace.get_tracer("test").start_as_current_span("client-operation") as root:
        await _call(channel)(b"traced")
        call = channel.unary_stream(f"/{SERVICE}/Stream", None, None)(b"fine")
        assert [item async for item in call] == [b"first", b"second"]
    await asyncio.sleep(0.05)  # client spans end in a done-callback task
    trace_id = root.get_span_context().trace_id
    spans = span_exporter.get_finished_spans()
    server_spans = [s for s in spans if s.kind == trace.SpanKind.SERVER]
    client_spans = [s for s in spans if s.kind == trace.SpanKind.CLIENT]
    assert {s.name for s in server_spans} == {f"{SERVICE}/Call", f"{SERVICE}/Stream"}
    assert all(s.context.trace_id == trace_id for s in server_spans + client_spans)
    client_ids = {s.context.span_id for s in client_spans}
    assert all(s.parent is not None and s.parent.span_id in client_ids for s in server_spans)


async def _settled(condition: Callable[[], bool], steps: int = 2000) -> None:
    """Let the loop run until ``condition()`` holds (bounded by a count of steps)."""
    for _ in range(steps):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def test_rpcs_are_counted_by_method_and_code(plumbing: Any) -> None:
    _, channel = plumbing
    before_ok = RPC_REQUESTS.labels("plumbing", "Call", "OK")._value.get()
    before_bad = RPC_REQUESTS.labels("plumbing", "Call", "INVALID_ARGUMENT")._value.get()
    await _call(channel)(b"x")
    with pytest.raises(grpc.aio.AioRpcError):
        await _call(channel)(b"invalid")
    # The server counts a call as its handler ends, which may be just after the client got
    # the reply: wait for it (by steps of the loop, not by time).
    await _settled(lambda: RPC_IN_FLIGHT.labels("plumbing", "Call")._value.get() == 0)
    assert RPC_REQUESTS.labels("plumbing", "Call", "OK")._value.get() == before_ok + 1
    assert RPC_REQUESTS.labels("plumbing", "Call", "INVALID_ARGUMENT")._value.get() == before_bad + 1


async def test_health_checks_are_not_traced(plumbing: Any, span_exporter: InMemorySpanExporter) -> None:
    _, channel = plumbing
    span_exporter.clear()
    await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE))
    await _call(channel)(b"traced")

    def server_spans() -> list[str]:
        return [s.name for s in span_exporter.get_finished_spans() if s.kind == trace.SpanKind.SERVER]

    await _settled(lambda: bool(server_spans()))
    assert server_spans() == [f"{SERVICE}/Call"]


async def test_channels_retry_unavailable_on_every_method_or_only_on_the_ones_named() -> None:
    calls = {"Unary": 0, "Stream": 0}

    async def unavailable(request: bytes, context: Any) -> bytes:
        calls["Unary"] += 1
        raise errors.Unavailable("replica is shutting down")

    async def unavailable_stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
        calls["Stream"] += 1
        raise errors.Unavailable("replica is shutting down")
        yield b""  # pragma: no cover - makes this a generator

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unavailable),
        "Stream": grpc.unary_stream_rpc_method_handler(unavailable_stream),
    }
    running, address = await start_in_process(generic_definition("flaky", SERVICE, handlers))
    seen: list[dict[str, int]] = []
    try:
        for retry_methods in (None, [(SERVICE, "Stream")]):  # everything, then streams only (behind Envoy)
            calls.update(Unary=0, Stream=0)
            channel = open_channel(address, retry_methods=retry_methods)
            with pytest.raises(grpc.aio.AioRpcError) as unary:
                await channel.unary_unary(f"/{SERVICE}/Unary", None, None)(b"x")
            with pytest.raises(grpc.aio.AioRpcError) as stream:
                await channel.unary_stream(f"/{SERVICE}/Stream", None, None)(b"x").read()
            assert unary.value.code() == stream.value.code() == grpc.StatusCode.UNAVAILABLE
            await channel.close(None)
            seen.append(dict(calls))
    finally:
        await running.stop()
    assert seen == [{"Unary": 4, "Stream": 4}, {"Unary": 1, "Stream": 4}]


async def test_call_interceptors_see_unary_and_streaming_calls_and_their_status(plumbing: Any) -> None:
    running, _ = plumbing
    started: list[str] = []
    ended: list[str] = []

    def prepare(details: Any) -> tuple[Any, Any]:
        started.append(details.method.decode() if isinstance(details.method, bytes) else details.method)
        return details, lambda code, text: ended.append(code.name)

    channel = open_channel(f"127.0.0.1:{running.port}", interceptors=call_interceptors(prepare))
    try:
        assert await channel.unary_unary(f"/{SERVICE}/Call", None, None)(b"x") == b"ok:x"
        assert [m async for m in channel.unary_stream(f"/{SERVICE}/Stream", None, None)(b"x")] == [b"first", b"second"]
        with pytest.raises(grpc.aio.AioRpcError):
            await channel.unary_unary(f"/{SERVICE}/Call", None, None)(b"invalid")
        for _ in range(100):  # end-of-call reports run as tasks after the call
            if len(ended) == 3:
                break
            await asyncio.sleep(0.01)
    finally:
        await channel.close(None)
    assert started == [f"/{SERVICE}/Call", f"/{SERVICE}/Stream", f"/{SERVICE}/Call"]
    assert sorted(ended) == ["INVALID_ARGUMENT", "OK", "OK"]
