"""The auth interceptor in a real grpc.aio server (the shared serve loop) in the test's loop.

Handlers report the principal they see, so the tests prove that calls are refused before
reaching them, that health and reflection stay open, that a principal never leaks from
one call to another, and that quotas answer RESOURCE_EXHAUSTED with ``retry-after``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ragmesh.vocabulary.keys import Grant, KeyStore, digest, new_key
from services.common.auth import MISSING, Authenticator, AuthInterceptor
from services.common.principal import authorize, current_principal
from services.common.quota import QuotaSettings, TenantLimits
from services.common.server import RunningServer
from tests.support.inprocess import generic_definition, start_in_process

SERVICE = "ragmesh.v1.OrchestratorService"
ACME, BETA = new_key(), new_key()


class Handlers:
    """Unary ``Who`` (the caller's tenant, after authorize) and streaming ``Hold`` (open until released)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.holding = asyncio.Event()

    async def who(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        if request:
            authorize(current_principal(), request.decode(), write=True)
        return current_principal().tenant.encode()

    async def hold(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[bytes]:
        yield current_principal().tenant.encode()
        self.holding.set()
        async with asyncio.timeout(30):
            await self.release.wait()

    def table(self) -> dict[str, grpc.RpcMethodHandler]:
        return {
            "Who": grpc.unary_unary_rpc_method_handler(self.who),
            "Hold": grpc.unary_stream_rpc_method_handler(self.hold),
        }


@pytest_asyncio.fixture
async def server() -> AsyncIterator[tuple[str, Handlers]]:
    store = KeyStore(None, [Grant(digest(ACME), "acme", ("acme_*",), True), Grant(digest(BETA), "beta", ("b",))])
    limits = TenantLimits(QuotaSettings(rate=1000.0, burst=1000, streams=1))
    handlers = Handlers()
    definition = generic_definition(
        "orchestrator", SERVICE, handlers.table(), interceptors=[AuthInterceptor(Authenticator(store), limits)]
    )
    running: RunningServer
    running, address = await start_in_process(definition)
    try:
        yield address, handlers
    finally:
        handlers.release.set()
        await running.server.stop(0)


async def _who(channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...], body: bytes = b"") -> bytes:
    call = channel.unary_unary(f"/{SERVICE}/Who", None, None)
    reply: bytes = await call(body, metadata=metadata, timeout=10)
    return reply


def _trailers(error: grpc.aio.AioRpcError) -> dict[str, str]:
    pairs: Any = error.trailing_metadata() or ()  # aio.Metadata at run time: (key, value) pairs
    return {str(key): str(value) for key, value in pairs}


async def test_a_key_is_required_and_names_the_tenant(server: tuple[str, Handlers]) -> None:
    address, _ = server
    async with grpc.aio.insecure_channel(address) as channel:
        assert await _who(channel, (("authorization", f"Bearer {ACME}"),)) == b"acme"
        assert await _who(channel, (("x-api-key", BETA),)) == b"beta"
        for metadata, message in [((), MISSING), ((("x-api-key", ACME[:-1]),), "invalid API key")]:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _who(channel, metadata)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert refused.value.details() == message


async def test_another_tenants_collection_is_permission_denied(server: tuple[str, Handlers]) -> None:
    address, _ = server
    async with grpc.aio.insecure_channel(address) as channel:
        assert await _who(channel, (("x-api-key", ACME),), b"acme_docs") == b"acme"
        for key, collection in [(ACME, b"b"), (BETA, b"b")]:  # beta's key is read-only
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _who(channel, (("x-api-key", key),), collection)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_health_and_reflection_need_no_key(server: tuple[str, Handlers]) -> None:
    address, _ = server
    async with grpc.aio.insecure_channel(address) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for reply in stub.ServerReflectionInfo(iter([request]), timeout=10):
            assert SERVICE in {s.name for s in reply.list_services_response.service}


async def test_streams_over_the_tenant_quota_get_resource_exhausted_with_retry_after(
    server: tuple[str, Handlers],
) -> None:
    address, handlers = server
    hold = f"/{SERVICE}/Hold"
    async with grpc.aio.insecure_channel(address) as channel:
        first = channel.unary_stream(hold, None, None)(b"", metadata=(("x-api-key", ACME),), timeout=30)
        assert await first.read() == b"acme"
        async with asyncio.timeout(10):
            await handlers.holding.wait()
        second = channel.unary_stream(hold, None, None)(b"", metadata=(("x-api-key", ACME),), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await second.read()
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "retry after" in (refused.value.details() or "")
        assert _trailers(refused.value)["retry-after"] == "1"
        other = channel.unary_stream(hold, None, None)(b"", metadata=(("x-api-key", BETA),), timeout=10)
        assert await other.read() == b"beta", "another tenant's quota is its own"
        handlers.release.set()
        async with asyncio.timeout(10):
            assert await first.read() is grpc.aio.EOF  # type: ignore[attr-defined]
        third = channel.unary_stream(hold, None, None)(b"", metadata=(("x-api-key", ACME),), timeout=10)
        assert await third.read() == b"acme", "the slot came back when the stream ended"
        other.cancel()
        third.cancel()


async def test_the_rate_limit_answers_resource_exhausted() -> None:
    store = KeyStore(None, [Grant(digest(ACME), "acme", ("*",), True)])
    limits = TenantLimits(QuotaSettings(rate=0.001, burst=2))  # two calls, then a long wait
    definition = generic_definition(
        "orchestrator", SERVICE, Handlers().table(), interceptors=[AuthInterceptor(Authenticator(store), limits)]
    )
    running, address = await start_in_process(definition)
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            metadata = (("x-api-key", ACME),)
            assert [await _who(channel, metadata) for _ in range(2)] == [b"acme", b"acme"]
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _who(channel, metadata)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "rate limit" in (refused.value.details() or "")
            retry = _trailers(refused.value)["retry-after"]
            assert int(retry) >= 999
    finally:
        await running.server.stop(0)
