"""mTLS on every hop behind Envoy, with a throwaway mesh CA: the real Envoy originates TLS to
fake replicas that serve TLS and require client certificates, and its internal listener
requires one from the orchestrator.

Calls through Envoy reach the replicas (unary and streams) and Envoy's gRPC health checks
pass over the clusters' TLS and follow a replica's status; a caller without a certificate of
the mesh CA — cleartext, TLS without one, or one from another CA — is refused by a replica
and by the internal listener; the orchestrator's own channels (``Components.connect``) go
through the internal listener with its client certificate; a renewed replica certificate is
served without a restart.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ragmesh.mesh.envoy_routes import HTTP_API_CLUSTER
from ragmesh.mesh.envoy_tls import TlsOptions, UpstreamTlsOptions
from ragmesh.v1 import (
    common_pb2,
    embedder_pb2,
    embedder_pb2_grpc,
    generator_pb2,
    generator_pb2_grpc,
    orchestrator_pb2,
    orchestrator_pb2_grpc,
)
from ragmesh.vocabulary.tls import ClientTls
from services.common.tls import ServerTls
from services.orchestrator.adapters.components.channels import Components
from services.orchestrator.transport.http.server import HttpServer
from tests.support.certs import Authority, Issued
from tests.support.envoy_mesh import BehindEnvoyTls, Mesh, running_mesh

pytestmark = pytest.mark.integration


class MeshPki:
    """The mesh CA (a service certificate, Envoy's) and an intruder's CA."""

    def __init__(self, directory: Path) -> None:
        self.authority = Authority(directory / "ca", "mesh")
        self.service = self.authority.issue("service", server=True, client=True, directory=directory / "service")
        self.envoy = self.authority.issue("envoy", server=True, client=True, directory=directory / "envoy")
        self.intruder = Authority(directory / "intruder", "intruder").issue("intruder", server=False)
        self.sds_dir = directory / "sds"

    def behind(self) -> BehindEnvoyTls:
        ca = str(self.authority.ca)
        return BehindEnvoyTls(
            replicas=ServerTls(str(self.service.cert), str(self.service.key), ca),
            upstreams=UpstreamTlsOptions(
                ca, str(self.envoy.cert), str(self.envoy.key), server_name="localhost", sds_dir=str(self.sds_dir)
            ),
            internal=TlsOptions(
                str(self.envoy.cert), str(self.envoy.key), ca, str(self.sds_dir), secret_prefix="ragmesh_internal"
            ),
        )

    def credentials(self, client: Issued | None) -> grpc.ChannelCredentials:
        ca = self.authority.ca.read_bytes()
        if client is None:
            return grpc.ssl_channel_credentials(ca)
        return grpc.ssl_channel_credentials(ca, client.key.read_bytes(), client.cert.read_bytes())


async def _health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _models(request: Request) -> JSONResponse:
    return JSONResponse({"object": "list", "data": []})


@pytest_asyncio.fixture(scope="module")
async def tls_mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Mesh, MeshPki]]:
    work = tmp_path_factory.mktemp("mesh-tls")
    pki = MeshPki(work)
    replicas = {"orchestrator": 1, "embedder": 1, "generator": 1}
    # The orchestrator's HTTP API server (uvicorn) with the replicas' TLS settings.
    app = Starlette(routes=[Route("/v1/health", _health), Route("/v1/models", _models)])
    http = HttpServer(app, "127.0.0.1:0", pki.behind().replicas)
    await http.start()
    try:
        # running_mesh waits until Envoy's health checks see every replica healthy: over mTLS.
        behind = pki.behind()
        async with running_mesh(work, replicas, 0.01, http_port=http.port, behind=behind) as mesh:
            yield mesh, pki
    finally:
        await http.stop(grace=1.0)


async def _info(channel: grpc.aio.Channel) -> embedder_pb2.EmbedderInfoResponse:
    stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
    return await stub.Info(embedder_pb2.EmbedderInfoRequest(), timeout=10)


async def _refused(channel: grpc.aio.Channel) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _info(channel)
    return refused.value.code()


def _stat(mesh: Mesh, name: str) -> int:
    status, text = mesh.envoy.admin(f"/stats?filter=^{name}$")
    assert status == 200, text
    return int(text.split(":")[1]) if ":" in text else 0


async def test_calls_through_envoy_reach_tls_replicas_and_health_checks_ride_tls(
    tls_mesh: tuple[Mesh, MeshPki],
) -> None:
    mesh, pki = tls_mesh
    async with grpc.aio.insecure_channel(mesh.address) as public:  # the public listener is not under test
        stub = orchestrator_pb2_grpc.OrchestratorServiceStub(public)
        answer = await stub.Query(orchestrator_pb2.QueryRequest(query="how?", collection="docs"), timeout=10)
    assert answer.answer.startswith("orchestrator-0: how?")
    async with grpc.aio.secure_channel(mesh.internal_address, pki.credentials(pki.service)) as internal:
        assert (await _info(internal)).model_name == "embedder-0"
        request = generator_pb2.GenerateRequest(sampling=common_pb2.SamplingParams(max_new_tokens=3))
        stream = generator_pb2_grpc.GeneratorServiceStub(internal).Generate(request, timeout=10)
        replies = [reply async for reply in stream]
    assert [r.delta.text for r in replies if r.HasField("delta")] == ["t0 ", "t1 ", "t2 "]
    for cluster in ("orchestrator", "embedder", "generator"):
        assert _stat(mesh, f"cluster.{cluster}.ssl.handshake") > 0, f"{cluster}: no TLS handshake"
        assert _stat(mesh, f"cluster.{cluster}.health_check.success") > 0
    # The checks read the replica's status over TLS, not only that it accepts connections.
    embedder = mesh.replicas["embedder"][0]
    await embedder.set_serving(False)
    await mesh.wait_health(embedder, healthy=False)
    await embedder.set_serving(True)
    await mesh.wait_health(embedder, healthy=True)


async def test_a_replica_refuses_callers_without_a_mesh_certificate(tls_mesh: tuple[Mesh, MeshPki]) -> None:
    mesh, pki = tls_mesh
    embedder = mesh.replicas["embedder"][0]
    before = embedder.calls["Info"]
    async with grpc.aio.insecure_channel(embedder.address) as cleartext:
        assert await _refused(cleartext) == grpc.StatusCode.UNAVAILABLE
    for client in (None, pki.intruder):
        async with grpc.aio.secure_channel(embedder.address, pki.credentials(client)) as channel:
            assert await _refused(channel) == grpc.StatusCode.UNAVAILABLE
    assert embedder.calls["Info"] == before, "a refused call reached the replica"
    async with grpc.aio.secure_channel(embedder.address, pki.credentials(pki.envoy)) as envoy_like:
        assert (await _info(envoy_like)).model_name == "embedder-0"
    assert embedder.calls["Info"] == before + 1


async def test_the_internal_listener_refuses_callers_without_a_mesh_certificate(
    tls_mesh: tuple[Mesh, MeshPki],
) -> None:
    mesh, pki = tls_mesh
    embedder = mesh.replicas["embedder"][0]
    before = embedder.calls["Info"]
    async with grpc.aio.insecure_channel(mesh.internal_address) as cleartext:
        assert await _refused(cleartext) == grpc.StatusCode.UNAVAILABLE
    for client in (None, pki.intruder):
        async with grpc.aio.secure_channel(mesh.internal_address, pki.credentials(client)) as channel:
            assert await _refused(channel) == grpc.StatusCode.UNAVAILABLE
    assert embedder.calls["Info"] == before, "a refused call reached the replica"


async def test_the_orchestrator_channels_call_through_the_internal_listener_over_mtls(
    tls_mesh: tuple[Mesh, MeshPki],
) -> None:
    mesh, pki = tls_mesh
    tls = ClientTls(str(pki.authority.ca), str(pki.service.cert), str(pki.service.key))
    address = mesh.internal_address
    components = Components.connect(address, address, address, behind_envoy=True, tls=tls)
    try:
        reply = await components.embedder.Info(embedder_pb2.EmbedderInfoRequest(), timeout=10)
        assert reply.model_name == "embedder-0"
        assert await components.health_of("generator", timeout=10) == ("SERVING", "")
    finally:
        await components.close()
    cleartext = Components.connect(address, address, address, behind_envoy=True)
    try:
        status, detail = await cleartext.health_of("embedder", timeout=10)
    finally:
        await cleartext.close()
    assert status == "UNREACHABLE" and detail.startswith("UNAVAILABLE"), detail


def _get(url: str, context: ssl.SSLContext | None = None) -> int:
    with urllib.request.urlopen(url, timeout=10, context=context) as response:
        return int(response.status)


async def test_the_http_api_is_served_over_mtls_behind_envoy(tls_mesh: tuple[Mesh, MeshPki]) -> None:
    mesh, pki = tls_mesh
    direct = f"127.0.0.1:{mesh.http_port}"
    await asyncio.to_thread(mesh.envoy.wait_health, HTTP_API_CLUSTER, direct, True)
    assert await asyncio.to_thread(_get, f"http://{mesh.address}/v1/models") == 200
    assert _stat(mesh, f"cluster.{HTTP_API_CLUSTER}.ssl.handshake") > 0
    trusting = ssl.create_default_context(cafile=str(pki.authority.ca))
    for refused_url, context in ((f"http://{direct}/v1/models", None), (f"https://{direct}/v1/models", trusting)):
        with pytest.raises((urllib.error.URLError, ConnectionError, ssl.SSLError)):
            await asyncio.to_thread(_get, refused_url, context)
    trusting.load_cert_chain(str(pki.envoy.cert), str(pki.envoy.key))
    assert await asyncio.to_thread(_get, f"https://{direct}/v1/models", trusting) == 200


def _served_certificate(address: str, pki: MeshPki) -> bytes:
    host, _, port = address.rpartition(":")
    context = ssl.create_default_context(cafile=str(pki.authority.ca))
    context.load_cert_chain(str(pki.envoy.cert), str(pki.envoy.key))
    context.set_alpn_protocols(["h2"])  # gRPC servers require ALPN h2
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        served = tls.getpeercert(binary_form=True)
    assert served is not None
    return served


async def test_a_renewed_replica_certificate_is_served_without_a_restart(tls_mesh: tuple[Mesh, MeshPki]) -> None:
    mesh, pki = tls_mesh
    generator = mesh.replicas["generator"][0]
    first = await asyncio.to_thread(_served_certificate, generator.address, pki)
    renewed = pki.authority.issue("service", server=True, client=True, directory=pki.service.cert.parent / "next")
    # Key and certificate renamed into place, as a Secret volume update does; a connection
    # between the two renames keeps the old pair (they do not match yet).
    shutil.copy(renewed.key, pki.service.key.with_suffix(".new"))
    shutil.copy(renewed.cert, pki.service.cert.with_suffix(".new"))
    pki.service.key.with_suffix(".new").replace(pki.service.key)
    pki.service.cert.with_suffix(".new").replace(pki.service.cert)
    expected = ssl.PEM_cert_to_DER_cert(renewed.cert.read_text())
    assert expected != first
    # The fetcher runs at each new connection: the very next handshake serves the new pair.
    assert await asyncio.to_thread(_served_certificate, generator.address, pki) == expected
    async with grpc.aio.secure_channel(mesh.internal_address, pki.credentials(pki.service)) as internal:
        assert (await _info(internal)).model_name == "embedder-0"
    await mesh.wait_health(generator, healthy=True)
