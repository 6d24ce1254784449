"""mTLS on Envoy's public listener, with a throwaway CA: the real Envoy in front of a fake
orchestrator, certificates served through SDS files.

A client without a certificate, with one from another CA, or in cleartext is refused; the
Python clients and the CLI connect with the CA and a client certificate; a certificate
renamed into place is served without restarting Envoy.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from ragmesh.client import AsyncRagmeshClient, RagmeshClient, RagmeshError
from ragmesh.mesh.envoy_tls import TlsOptions
from ragmesh.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from tests.support.certs import Authority, Issued
from tests.support.envoy_mesh import Mesh, running_mesh
from tests.support.mesh_cli import run_cli

pytestmark = pytest.mark.integration


class Pki:
    """The mesh's CA (server and client certificates) and an intruder's CA."""

    def __init__(self, directory: Path) -> None:
        self.authority = Authority(directory / "ca", "ragmesh")
        self.server = self.authority.issue("envoy", server=True, directory=directory / "server")
        self.client = self.authority.issue("client", server=False)
        self.intruder = Authority(directory / "intruder", "intruder").issue("intruder", server=False)
        self.sds_dir = directory / "sds"

    def options(self) -> TlsOptions:
        return TlsOptions(
            str(self.server.cert), str(self.server.key), str(self.authority.ca), sds_dir=str(self.sds_dir)
        )


@pytest_asyncio.fixture(scope="module")
async def tls_mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Mesh, Pki]]:
    work = tmp_path_factory.mktemp("tls-mesh")
    pki = Pki(work)
    async with running_mesh(work, {"orchestrator": 1}, tls=pki.options()) as mesh:
        yield mesh, pki


def _credentials(pki: Pki, client: Issued | None) -> grpc.ChannelCredentials:
    ca = pki.authority.ca.read_bytes()
    if client is None:
        return grpc.ssl_channel_credentials(ca)
    return grpc.ssl_channel_credentials(ca, client.key.read_bytes(), client.cert.read_bytes())


async def _check_health(channel: grpc.aio.Channel) -> orchestrator_pb2.CheckHealthResponse:
    stub = orchestrator_pb2_grpc.OrchestratorServiceStub(channel)
    return await stub.CheckHealth(orchestrator_pb2.CheckHealthRequest(), timeout=10)


async def test_a_client_without_a_valid_certificate_is_refused(tls_mesh: tuple[Mesh, Pki]) -> None:
    mesh, pki = tls_mesh
    async with grpc.aio.secure_channel(mesh.address, _credentials(pki, pki.client)) as channel:
        assert (await _check_health(channel)).all_serving
    before = mesh.replicas["orchestrator"][0].calls["CheckHealth"]
    for credentials in (_credentials(pki, None), _credentials(pki, pki.intruder)):
        async with grpc.aio.secure_channel(mesh.address, credentials) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _check_health(channel)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    async with grpc.aio.insecure_channel(mesh.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as cleartext:
            await _check_health(channel)
        assert cleartext.value.code() == grpc.StatusCode.UNAVAILABLE
    assert mesh.replicas["orchestrator"][0].calls["CheckHealth"] == before, "no refused call reached the service"


async def test_the_python_clients_connect_with_tls_options(tls_mesh: tuple[Mesh, Pki]) -> None:
    mesh, pki = tls_mesh
    files = {"tls_ca": str(pki.authority.ca), "tls_cert": str(pki.client.cert), "tls_key": str(pki.client.key)}
    async with AsyncRagmeshClient(mesh.address, **files) as client:
        assert (await client.health()).all_serving

    def blocking() -> bool:  # the sync client off the loop: the fake orchestrator runs in it
        with RagmeshClient(mesh.address, **files) as client:
            return client.health().all_serving

    assert await asyncio.to_thread(blocking)

    def without_certificate() -> None:
        with RagmeshClient(mesh.address, tls_ca=str(pki.authority.ca), timeout=10) as client:
            client.health()

    with pytest.raises(RagmeshError, match="UNAVAILABLE"):
        await asyncio.to_thread(without_certificate)
    with pytest.raises(ValueError, match="go together"):
        RagmeshClient(mesh.address, tls_cert=str(pki.client.cert))


async def test_the_cli_connects_with_tls_options(tls_mesh: tuple[Mesh, Pki]) -> None:
    mesh, pki = tls_mesh
    tls = ["--tls-ca", str(pki.authority.ca), "--tls-cert", str(pki.client.cert), "--tls-key", str(pki.client.key)]
    done = await asyncio.to_thread(run_cli, "--address", mesh.address, *tls, "health", timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SERVING" in done.stdout
    refused = await asyncio.to_thread(
        run_cli, "--address", mesh.address, "--timeout", "10", "--tls-ca", str(pki.authority.ca), "health", timeout=60
    )
    assert refused.returncode == 3, refused.stdout + refused.stderr


def _served_certificate(address: str, pki: Pki) -> bytes:
    host, _, port = address.rpartition(":")
    context = ssl.create_default_context(cafile=str(pki.authority.ca))
    context.load_cert_chain(str(pki.client.cert), str(pki.client.key))
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        served = tls.getpeercert(binary_form=True)
    assert served is not None
    return served


async def test_a_renewed_certificate_is_served_without_a_restart(tls_mesh: tuple[Mesh, Pki]) -> None:
    mesh, pki = tls_mesh
    first = await asyncio.to_thread(_served_certificate, mesh.address, pki)
    renewed = pki.authority.issue("envoy", server=True, directory=pki.server.cert.parent / "next")
    # Rename into the watched directory, key first: what a Secret volume update amounts to.
    shutil.copy(renewed.key, pki.server.key.with_suffix(".new"))
    shutil.copy(renewed.cert, pki.server.cert.with_suffix(".new"))
    pki.server.key.with_suffix(".new").replace(pki.server.key)
    pki.server.cert.with_suffix(".new").replace(pki.server.cert)
    expected = ssl.PEM_cert_to_DER_cert(renewed.cert.read_text())
    assert expected != first
    async with asyncio.timeout(20):
        while (served := await asyncio.to_thread(_served_certificate, mesh.address, pki)) != expected:
            await asyncio.sleep(0.2)
    assert served == expected
    async with grpc.aio.secure_channel(mesh.address, _credentials(pki, pki.client)) as channel:
        assert (await _check_health(channel)).all_serving
