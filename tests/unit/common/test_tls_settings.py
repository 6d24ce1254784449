"""TLS settings of the hops behind Envoy: the variables, start-up failures that name the file,
the certificate fetcher that follows renewed files, and the launcher's wiring."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import grpc
import pytest

from ragmesh.mesh.launcher import Mesh
from ragmesh.mesh.mesh_tls import FILES, MeshTls
from ragmesh.mesh.plan import MeshPlan
from ragmesh.vocabulary.tls import ClientTls, TlsFileError
from services.common.config import ConfigError, Env
from services.common.server import RunningServer, StartupError
from services.common.server_config import ServerSettings
from services.common.tls import ReloadingCertificates, ServerTls, client_tls_from_env
from tests.support.certs import Authority, Issued
from tests.support.inprocess import generic_definition, local_settings


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Authority, Issued, Issued]:
    authority = Authority(tmp_path_factory.mktemp("pki"), "mesh")
    return authority, authority.issue("service", server=True, client=True), authority.issue("other", server=True)


def test_server_tls_is_off_by_default_and_cert_and_key_go_together() -> None:
    assert ServerSettings.from_env("embedder", {}).tls is None
    env = {"RAGMESH_EMBEDDER_TLS_CERT": "c.pem", "RAGMESH_EMBEDDER_TLS_KEY": "k.pem"}
    tls = ServerSettings.from_env("embedder", env).tls
    assert tls == ServerTls("c.pem", "k.pem", None, "RAGMESH_EMBEDDER_TLS_") and not tls.mutual
    mutual = ServerSettings.from_env("embedder", {**env, "RAGMESH_EMBEDDER_TLS_CLIENT_CA": "ca.pem"}).tls
    assert mutual is not None and mutual.mutual
    with pytest.raises(ConfigError, match="RAGMESH_RETRIEVER_TLS_KEY"):
        ServerSettings.from_env("retriever", {"RAGMESH_RETRIEVER_TLS_CERT": "c.pem"})
    with pytest.raises(ConfigError, match="RAGMESH_GENERATOR_TLS_CERT"):
        ServerSettings.from_env("generator", {"RAGMESH_GENERATOR_TLS_CLIENT_CA": "ca.pem"})


def test_client_tls_needs_the_ca_and_a_whole_certificate() -> None:
    env = Env("orchestrator", {})
    assert client_tls_from_env(env) is None
    ca_only = client_tls_from_env(Env("worker", {"RAGMESH_WORKER_COMPONENTS_TLS_CA": "ca.pem"}))
    assert ca_only == ClientTls("ca.pem", source="RAGMESH_WORKER_COMPONENTS_TLS_")
    with pytest.raises(ConfigError, match="RAGMESH_ORCHESTRATOR_COMPONENTS_TLS_CA"):
        client_tls_from_env(Env("orchestrator", {"RAGMESH_ORCHESTRATOR_COMPONENTS_TLS_CERT": "c.pem"}))
    half = {"RAGMESH_ORCHESTRATOR_COMPONENTS_TLS_CA": "ca.pem", "RAGMESH_ORCHESTRATOR_COMPONENTS_TLS_CERT": "c.pem"}
    with pytest.raises(ConfigError, match="RAGMESH_ORCHESTRATOR_COMPONENTS_TLS_KEY"):
        client_tls_from_env(Env("orchestrator", half))
    named = ClientTls("ca.pem", server_name="envoy.ragmesh.svc")
    assert named.options() == [("grpc.ssl_target_name_override", "envoy.ragmesh.svc")]


async def _start(tls: ServerTls) -> None:
    definition = generic_definition("embedder", "ragmesh.v1.EmbedderService", {})
    server = RunningServer(definition, dataclasses.replace(local_settings("embedder"), tls=tls))
    try:
        await server.start()
    finally:
        await server.server.stop(0)


async def test_unusable_files_stop_the_start_with_the_variable_and_the_path(
    pki: tuple[Authority, Issued, Issued], tmp_path: Path
) -> None:
    authority, service, other = pki
    prefix = "RAGMESH_EMBEDDER_TLS_"
    missing = tmp_path / "absent.pem"
    with pytest.raises(StartupError, match=f"{prefix}CERT={missing}: cannot read it"):
        await _start(ServerTls(str(missing), str(service.key), None, prefix))
    with pytest.raises(StartupError, match="are not a PEM certificate and its key"):
        await _start(ServerTls(str(service.cert), str(other.key), None, prefix))
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(StartupError, match=f"{prefix}CLIENT_CA={garbage}: not a PEM CA"):
        await _start(ServerTls(str(service.cert), str(service.key), str(garbage), prefix))
    await _start(ServerTls(str(service.cert), str(service.key), str(authority.ca), prefix))  # the control


def test_the_fetcher_follows_renamed_files_and_keeps_a_half_renewed_pair(
    pki: tuple[Authority, Issued, Issued], tmp_path: Path
) -> None:
    authority, service, _ = pki
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(service.cert, cert)
    shutil.copy(service.key, key)
    reloading = ReloadingCertificates(ServerTls(str(cert), str(key), str(authority.ca)))
    assert isinstance(reloading.credentials(), grpc.ServerCredentials)
    assert reloading.fetch() is None  # unchanged: gRPC keeps the current configuration
    renewed = authority.issue("renewed", server=True, directory=tmp_path / "next")
    shutil.copy(renewed.cert, tmp_path / "tls.crt.new")
    (tmp_path / "tls.crt.new").replace(cert)  # the certificate first: no longer matches the key
    assert reloading.fetch() is None
    shutil.copy(renewed.key, tmp_path / "tls.key.new")
    (tmp_path / "tls.key.new").replace(key)
    assert reloading.fetch() is not None  # the new pair
    assert reloading.fetch() is None
    key.unlink()  # a file gone: keep serving what was loaded
    assert reloading.fetch() is None
    with pytest.raises(TlsFileError):
        ReloadingCertificates(ServerTls(str(cert), str(key)))


def test_the_launcher_gives_every_child_its_certificates(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"lacks ca\.pem, envoy\.pem"):
        MeshTls.from_directory(tmp_path, tmp_path / "sds")
    for name in FILES:
        (tmp_path / name).write_text("")
    tls = MeshTls.from_directory(tmp_path, tmp_path / "sds")
    mesh = Mesh(MeshPlan(mesh_tls=tls, log_dir=tmp_path / "logs", default_ports=False))
    embedder = mesh._env("embedder", 1, 2)
    assert embedder["RAGMESH_EMBEDDER_TLS_CERT"] == str(tmp_path / "service.pem")
    assert embedder["RAGMESH_EMBEDDER_TLS_CLIENT_CA"] == str(tmp_path / "ca.pem")
    assert not any("COMPONENTS_TLS" in name for name in embedder)
    worker = mesh._env("worker", 3, 4)
    assert worker["RAGMESH_WORKER_COMPONENTS_TLS_CERT"] == str(tmp_path / "service.pem")
    assert worker["RAGMESH_WORKER_COMPONENTS_TLS_CA"] == str(tmp_path / "ca.pem")
    assert tls.internal_listener().mutual and tls.upstreams().mutual
    assert tls.internal_listener().server_secret != "ragmesh_server_cert"  # not the public listener's
    plain = Mesh(MeshPlan(log_dir=tmp_path / "logs", default_ports=False))
    assert not any("TLS" in name for name in plain._env("worker", 5, 6))
