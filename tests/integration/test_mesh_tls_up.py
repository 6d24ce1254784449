"""The launcher with ``mesh_tls`` (``ragmesh up --mesh-tls-dir``): every real component as its own
process serving mTLS, Envoy originating mTLS to them and requiring it on the internal listener.

The start itself proves the launcher's readiness probes and Envoy's health checks work over
mTLS, and that the worker reaches the components through the internal listener; an
ingestion and a query through the public listener go orchestrator → internal listener →
embedder, retriever and generator with no cleartext hop; a replica called directly in
cleartext or without a certificate refuses, and so does the internal listener.
Small random models keep the processes quick to load (the logic, not the model, is under test).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ragmesh.client import RagmeshClient
from ragmesh.mesh.envoy_routes import HTTP_API_CLUSTER
from ragmesh.mesh.launcher import Mesh
from ragmesh.mesh.mesh_tls import MeshTls
from ragmesh.mesh.plan import MeshPlan
from ragmesh.mesh.processes import free_port
from tests.support.certs import Authority
from tests.support.redis_server import RedisServer
from tests.support.tiny_encoder import save_tiny_encoder

pytestmark = pytest.mark.integration


def mesh_tls_dir(directory: Path) -> Path:
    """The files ``--mesh-tls-dir`` expects, from a throwaway CA."""
    authority = Authority(directory, "mesh")
    authority.ca.rename(directory / "ca.pem")
    for name in ("envoy", "service"):
        authority.issue(name, server=True, client=True)
    return directory


@pytest.fixture(scope="module")
def tls_up(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[tuple[Mesh, Path]]:
    work = tmp_path_factory.mktemp("mesh-tls-up")
    certs = mesh_tls_dir(work / "certs")
    encoder = save_tiny_encoder(work / "encoder")
    redis = RedisServer(work)  # the workers' broker
    redis.start()
    plan = MeshPlan(
        envoy_port=free_port(),
        envoy_admin_port=free_port(),
        mesh_tls=MeshTls.from_directory(certs, work / "logs" / "sds"),
        default_ports=False,
        retriever_uri=str(work / "milvus.db"),
        log_dir=work / "logs",
        env={
            "embedder": {"RAGMESH_EMBEDDER_MODEL_PATH": str(encoder)},
            "generator": {
                "RAGMESH_GENERATOR_MODEL_PATH": str(tiny_model_dir),
                "RAGMESH_GENERATOR_BACKEND": "transformers",
            },
        },
        redis_url=redis.url,
        workers=1,
    )
    mesh = Mesh(plan)
    try:
        # Probes and Envoy's checks go over mTLS; the worker reports SERVING only once it
        # reached the embedder and retriever through the internal listener (mTLS too).
        mesh.start(report=lambda line: None, timeout=300)
        yield mesh, certs
    finally:
        mesh.stop()
        redis.stop()


def test_a_query_goes_through_every_hop_over_mtls(tls_up: tuple[Mesh, Path]) -> None:
    mesh, _ = tls_up
    with RagmeshClient(mesh.address, timeout=60) as client:
        health = client.health()
        assert health.all_serving, health
        document = {"id": "envoy", "text": "Envoy balances every gRPC call across the replicas."}
        progress = client.ingest([document], collection="tls_docs")
        assert progress.documents_done == 1 and not progress.errors, progress
        answer = client.query("How does Envoy balance calls?", collection="tls_docs", max_new_tokens=4)
        stats = client.stats()
    assert answer.usage.completion_tokens > 0  # the generator answered
    calls = {c.component: (c.requests, c.errors) for c in stats.components}
    # The orchestrator reached each component through the internal listener, without a failure.
    assert all(requests > 0 and errors == 0 for requests, errors in calls.values()), calls
    assert set(calls) == {"embedder", "retriever", "generator"}


def test_the_http_api_is_reached_over_mtls(tls_up: tuple[Mesh, Path]) -> None:
    mesh, _ = tls_up
    assert mesh.envoy is not None
    (orchestrator,) = [r for r in mesh.replicas if r.component == "orchestrator"]
    mesh.envoy.wait_health(HTTP_API_CLUSTER, f"127.0.0.1:{orchestrator.process.http_port}", healthy=True)
    with urllib.request.urlopen(f"http://{mesh.address}/v1/models", timeout=30) as response:
        assert response.status == 200
    status, stats = mesh.envoy.admin(f"/stats?filter=^cluster.{HTTP_API_CLUSTER}.ssl.handshake$")
    assert status == 200 and int(stats.split(":")[1]) > 0, stats


def _health(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    channel = grpc.insecure_channel(address) if credentials is None else grpc.secure_channel(address, credentials)
    with channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        except grpc.RpcError as error:
            return cast(grpc.Call, error).code()
    return grpc.StatusCode.OK


def test_replicas_and_the_internal_listener_refuse_callers_without_a_certificate(tls_up: tuple[Mesh, Path]) -> None:
    mesh, certs = tls_up
    ca = (certs / "ca.pem").read_bytes()
    with_cert = grpc.ssl_channel_credentials(
        ca, (certs / "service-key.pem").read_bytes(), (certs / "service.pem").read_bytes()
    )
    for replica in mesh.replicas:
        assert _health(replica.address, None) == grpc.StatusCode.UNAVAILABLE, replica.component
        assert _health(replica.address, grpc.ssl_channel_credentials(ca)) == grpc.StatusCode.UNAVAILABLE
        assert _health(replica.address, with_cert) == grpc.StatusCode.OK, replica.component
    assert _health(mesh.internal_address, None) == grpc.StatusCode.UNAVAILABLE
    assert _health(mesh.internal_address, grpc.ssl_channel_credentials(ca)) == grpc.StatusCode.UNAVAILABLE
    assert _health(mesh.internal_address, with_cert) == grpc.StatusCode.OK
