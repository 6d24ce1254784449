"""The health port (``RAGMESH_<SERVICE>_HEALTH_PORT``): grpc.health.v1 alone, in cleartext,
beside a service port that requires mTLS — what the kubelet's native gRPC probe can reach."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ragmesh.mesh.processes import free_port
from services.common.server import RunningServer, StartupError
from services.common.server_config import ServerSettings
from services.common.tls import ServerTls
from tests.support.certs import Authority
from tests.support.inprocess import generic_definition, local_settings

SERVICE = "test.Probed"
HANDLERS = {"Call": grpc.unary_unary_rpc_method_handler(lambda request, context: b"ok")}
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _settings(tmp_path: Path, health_port: int) -> ServerSettings:
    authority = Authority(tmp_path, "probe")
    service = authority.issue("service", server=True, client=True)
    tls = ServerTls(str(service.cert), str(service.key), str(authority.ca))
    return dataclasses.replace(local_settings("embedder"), tls=tls, health_port=health_port)


def test_the_setting_is_read_from_the_environment() -> None:
    settings = ServerSettings.from_env("generator", {"RAGMESH_GENERATOR_ADDR": "0.0.0.0:50054"})
    assert settings.health_port == 0
    settings = ServerSettings.from_env(
        "generator", {"RAGMESH_GENERATOR_ADDR": "0.0.0.0:50054", "RAGMESH_GENERATOR_HEALTH_PORT": "50060"}
    )
    assert settings.health_address == "0.0.0.0:50060"


async def test_health_alone_in_cleartext_beside_an_mtls_port(tmp_path: Path) -> None:
    running = RunningServer(generic_definition("probed", SERVICE, HANDLERS), _settings(tmp_path, free_port()))
    await running.start()
    health_address = running.settings.health_address
    async with grpc.aio.insecure_channel(health_address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ("", SERVICE):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert reply.status == SERVING, name
        with pytest.raises(grpc.aio.AioRpcError) as refused:  # nothing but health on this port
            await channel.unary_unary(f"/{SERVICE}/Call", None, None)(b"", timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=SERVICE))
        assert (await watch.read()).status == SERVING
        stopping = asyncio.ensure_future(running.stop(grace=1.0))
        assert (await watch.read()).status == NOT_SERVING  # draining shows on the probe's port too
        watch.cancel()
        await stopping
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:  # the service port: mTLS only
        with pytest.raises(grpc.aio.AioRpcError) as cleartext:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert cleartext.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_taken_health_port_is_a_clear_startup_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        running = RunningServer(generic_definition("taken", SERVICE, HANDLERS), _settings(tmp_path, port))
        with pytest.raises(StartupError, match=f"health checks on 127.0.0.1:{port}"):
            await running.start()
