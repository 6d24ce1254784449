"""A mesh secured the way a production one is: TLS on Envoy's public listener, an API key
required, mTLS on every hop behind Envoy — started by the launcher (``ragmesh up``'s code)
with small random models (the transport, not the model, is under test), and a worker."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ragmesh.cli.up import session_key_file
from ragmesh.client import RagmeshClient
from ragmesh.mesh.envoy_tls import TlsOptions
from ragmesh.mesh.launcher import Mesh
from ragmesh.mesh.mesh_tls import MeshTls
from ragmesh.mesh.plan import MeshPlan
from ragmesh.mesh.processes import free_port
from tests.support.certs import Authority
from tests.support.redis_server import RedisServer
from tests.support.tiny_encoder import save_tiny_encoder


@dataclass(frozen=True)
class SecuredMesh:
    """The started mesh and what a caller needs: the CA of Envoy's certificate, the key."""

    mesh: Mesh
    #: ``--mesh-tls-dir``: ca.pem, envoy.pem, service.pem and their keys.
    certs: Path
    api_key: str

    @property
    def address(self) -> str:
        return self.mesh.address

    @property
    def ca(self) -> Path:
        """The CA of every certificate, Envoy's public one included."""
        return self.certs / "ca.pem"

    def client(self, **settings: object) -> RagmeshClient:
        """A client over TLS with the key."""
        return RagmeshClient(self.address, **({"tls_ca": str(self.ca), "api_key": self.api_key} | settings))


def mesh_tls_dir(directory: Path) -> tuple[Path, Authority]:
    """The files ``--mesh-tls-dir`` expects, from a throwaway CA (returned to issue more)."""
    authority = Authority(directory, "mesh")
    authority.ca.rename(directory / "ca.pem")
    authority.ca = directory / "ca.pem"
    for name in ("envoy", "service"):
        authority.issue(name, server=True, client=True)
    return directory, authority


@contextlib.contextmanager
def secured_mesh(work: Path, tiny_model_dir: Path) -> Iterator[SecuredMesh]:
    """Start it (probes and Envoy's health checks over mTLS; the worker SERVING only once it
    reached the embedder and retriever through the internal listener); stop it on the way out."""
    certs, authority = mesh_tls_dir(work / "certs")
    public = authority.issue("public", server=True, directory=work / "public")
    key_file, key = session_key_file(work / "logs")
    encoder = save_tiny_encoder(work / "encoder")
    redis = RedisServer(work)  # the workers' broker
    redis.start()
    plan = MeshPlan(
        envoy_port=free_port(),
        envoy_admin_port=free_port(),
        tls=TlsOptions(str(public.cert), str(public.key), None, str(work / "logs" / "sds")),
        mesh_tls=MeshTls.from_directory(certs, work / "logs" / "sds"),
        api_key_file=key_file,
        default_ports=False,
        retriever_uri=str(work / "milvus.db"),
        log_dir=work / "logs",
        env={
            "embedder": {"RAGMESH_EMBEDDER_MODEL_PATH": str(encoder)},
            # The tiny model's own window (256) holds the prompt's instructions but no source.
            "generator": {
                "RAGMESH_GENERATOR_MODEL_PATH": str(tiny_model_dir),
                "RAGMESH_GENERATOR_BACKEND": "transformers",
                "RAGMESH_GENERATOR_CONTEXT_LENGTH": "2048",
            },
        },
        redis_url=redis.url,
        workers=1,
    )
    mesh = Mesh(plan)
    try:
        mesh.start(report=lambda line: None, timeout=300)
        yield SecuredMesh(mesh, certs, key)
    finally:
        mesh.stop()
        redis.stop()
