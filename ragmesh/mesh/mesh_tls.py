"""``ragmesh up --mesh-tls-dir DIR``: no cleartext hop behind Envoy.

One directory holds the mesh's certificates (see docs/security.md for the openssl
commands that make them):

- ``ca.pem`` — the mesh CA: it signs every certificate below, the services trust it for
  their callers, Envoy for the replicas, the orchestrator and workers for Envoy;
- ``envoy.pem`` / ``envoy-key.pem`` — Envoy: the server certificate of its internal
  listener (for ``127.0.0.1``) and its client certificate to the replicas;
- ``service.pem`` / ``service-key.pem`` — every service: the server certificate of the
  replicas (for ``localhost`` and ``127.0.0.1``) and the orchestrator's and workers' client
  certificate to the internal listener.

Both certificates serve as server and client certificates, so they need both extended
key usages (or none). From this the launcher derives each child's environment
(``RAGMESH_<C>_TLS_*``, ``RAGMESH_<C>_COMPONENTS_TLS_*``), Envoy's internal-listener and
upstream TLS options, and the credentials of its own readiness probes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ragmesh.mesh.envoy_tls import TlsOptions, UpstreamTlsOptions
from ragmesh.vocabulary.tls import ClientTls

FILES = ("ca.pem", "envoy.pem", "envoy-key.pem", "service.pem", "service-key.pem")
#: What Envoy checks in the replicas' certificates (SNI and DNS SAN) on loopback.
SERVER_NAME = "localhost"
#: Components that call others through Envoy's internal listener.
CALLERS = ("orchestrator", "worker")


@dataclass(frozen=True)
class MeshTls:
    """The certificate files of the hops behind Envoy, and where Envoy's SDS files go."""

    directory: Path
    sds_dir: Path

    @classmethod
    def from_directory(cls, directory: Path, sds_dir: Path) -> MeshTls:
        """The files of ``directory``; ValueError naming the ones missing."""
        directory = directory.resolve()
        missing = [name for name in FILES if not (directory / name).is_file()]
        if missing:
            raise ValueError(f"{directory} lacks {', '.join(missing)} (see docs/security.md for the commands)")
        return cls(directory, sds_dir)

    def _file(self, name: str) -> str:
        return str(self.directory / name)

    def env(self, component: str) -> dict[str, str]:
        """A child's variables: its server certificate and client CA (mTLS), and for the
        orchestrator and workers the client certificate and CA of the internal listener."""
        prefix = f"RAGMESH_{component.upper()}_"
        env = {
            prefix + "TLS_CERT": self._file("service.pem"),
            prefix + "TLS_KEY": self._file("service-key.pem"),
            prefix + "TLS_CLIENT_CA": self._file("ca.pem"),
        }
        if component in CALLERS:
            env[prefix + "COMPONENTS_TLS_CA"] = self._file("ca.pem")
            env[prefix + "COMPONENTS_TLS_CERT"] = self._file("service.pem")
            env[prefix + "COMPONENTS_TLS_KEY"] = self._file("service-key.pem")
        return env

    def internal_listener(self) -> TlsOptions:
        """mTLS on Envoy's internal listener: its certificate, callers' certificates of the CA."""
        return TlsOptions(
            self._file("envoy.pem"),
            self._file("envoy-key.pem"),
            self._file("ca.pem"),
            sds_dir=str(self.sds_dir),
            secret_prefix="ragmesh_internal",
        )

    def upstreams(self) -> UpstreamTlsOptions:
        """Envoy to the replicas: their CA and name, Envoy's client certificate."""
        return UpstreamTlsOptions(
            self._file("ca.pem"),
            self._file("envoy.pem"),
            self._file("envoy-key.pem"),
            server_name=SERVER_NAME,
            sds_dir=str(self.sds_dir),
        )

    def internal_client(self) -> ClientTls:
        """What a caller of the internal listener presents (the orchestrators' certificate)."""
        return ClientTls(self._file("ca.pem"), self._file("service.pem"), self._file("service-key.pem"))

    def probe(self) -> ClientTls:
        """The launcher's own readiness probes of the replicas (Envoy's client certificate)."""
        return ClientTls(self._file("ca.pem"), self._file("envoy.pem"), self._file("envoy-key.pem"), SERVER_NAME)
