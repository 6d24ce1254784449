"""``python -m services.common.health_probe`` (the tls component's startup probe) against a
real gRPC server that serves mTLS with the services' own credentials: SERVING passes, and
NOT_SERVING, a wrong name, a certificate of another CA, no certificate and bad files fail."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ragmesh.mesh.processes import ROOT, service_env
from services.common import health_probe
from services.common.tls import ServerTls
from tests.support.certs import Authority, Issued

SERVICE = "ragmesh.v1.EmbedderService"


@dataclass
class Mesh:
    """A running mTLS health server, its CA and a certificate of that CA."""

    address: str
    ca: Path
    pod: Issued
    servicer: health.HealthServicer

    def args(self, *extra: str, ca: Path | None = None, pod: Issued | None = None) -> list[str]:
        pod = pod or self.pod
        files = ["--ca", str(ca or self.ca), "--cert", str(pod.cert), "--key", str(pod.key)]
        return [self.address, SERVICE, *files, *extra]


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[Mesh]:
    authority = Authority(tmp_path / "mesh", "mesh")
    # One certificate serves and calls, as in the pods: the probe presents the service's own.
    pod = authority.issue("embedder", server=True, client=True)
    servicer = health.HealthServicer()
    servicer.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    credentials = ServerTls(str(pod.cert), str(pod.key), str(authority.ca)).load()
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield Mesh(f"127.0.0.1:{port}", authority.ca, pod, servicer)
    finally:
        server.stop(grace=None)


def test_serving_passes_and_not_serving_fails(mesh: Mesh, capsys: pytest.CaptureFixture[str]) -> None:
    assert health_probe.main(mesh.args("--server-name", "localhost")) == 0
    assert capsys.readouterr().out.strip() == "SERVING"
    mesh.servicer.set(SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
    assert health_probe.main(mesh.args("--server-name", "localhost")) == 1
    assert capsys.readouterr().out.strip() == "NOT_SERVING"


def test_the_name_in_the_certificate_is_checked(mesh: Mesh, capsys: pytest.CaptureFixture[str]) -> None:
    assert health_probe.main(mesh.args("--server-name", "embedder.ragmesh.svc")) == 1
    assert capsys.readouterr().out.startswith("UNREACHABLE")


def test_another_ca_or_no_certificate_is_refused(
    mesh: Mesh, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = Authority(tmp_path / "other", "other")
    stranger = other.issue("stranger", server=True, client=True)
    assert health_probe.main(mesh.args("--server-name", "localhost", pod=stranger)) == 1  # the server refuses it
    assert health_probe.main(mesh.args("--server-name", "localhost", ca=other.ca)) == 1  # the probe refuses the server
    assert health_probe.main([mesh.address, SERVICE, "--ca", str(mesh.ca), "--server-name", "localhost"]) == 1
    assert capsys.readouterr().out.split() == ["UNREACHABLE", "(UNAVAILABLE)"] * 3


def test_bad_arguments_and_files_exit_2(mesh: Mesh, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert health_probe.main([mesh.address, "--ca", str(mesh.ca), "--cert", str(mesh.pod.cert)]) == 2
    assert "--cert and --key go together" in capsys.readouterr().err
    assert health_probe.main(mesh.args("--timeout", "0")) == 2
    assert health_probe.main(mesh.args(ca=tmp_path / "missing.pem")) == 2
    assert "missing.pem" in capsys.readouterr().err


def test_runs_as_a_module(mesh: Mesh) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.common.health_probe", *mesh.args("--server-name", "localhost")],
        cwd=ROOT,
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "SERVING"), done.stderr
