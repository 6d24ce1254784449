"""TLS and mTLS at Envoy, with certificates served by file-based SDS.

Three places, each optional:

- the client listener (:class:`TlsOptions`): Envoy's certificate, and with ``ca_file``
  client certificates required (mTLS);
- the internal listener (again :class:`TlsOptions`, with its own ``secret_prefix``): the
  orchestrator and the worker present a certificate of the mesh's CA;
- the upstreams (:class:`UpstreamTlsOptions`): Envoy originates TLS to every replica
  (ALPN h2, SNI and the replica's certificate checked against the services' CA and name)
  and presents its own client certificate, which the replicas require (mTLS). Active
  health checks use the cluster's transport socket, so they ride the same TLS.

Envoy reads the certificates and CAs through SDS files (``path_config_source``) in
``sds_dir``; each secret names its PEM files and a ``watched_directory``, so replacing
the PEM files by a rename in that directory (what a Kubernetes Secret volume does, or
``mv new.pem cert.pem``) is picked up without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Config = dict[str, Any]
SERVER_SECRET = "ragmesh_server_cert"
CLIENT_CA_SECRET = "ragmesh_client_ca"
_SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
_DOWNSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
_UPSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
UPSTREAM_CERT_SECRET = "ragmesh_upstream_client_cert"
UPSTREAM_CA_SECRET = "ragmesh_upstream_ca"


@dataclass(frozen=True)
class TlsOptions:
    """Certificate files of the client listener and where its SDS files live."""

    cert_file: str
    key_file: str
    #: CA that signs client certificates: set it to require them (mTLS).
    ca_file: str | None = None
    #: Directory of the SDS files (written by :func:`write_sds`, or a ConfigMap in Kubernetes).
    sds_dir: str = "sds"
    #: Names the secrets (``<prefix>_server_cert``, ``<prefix>_client_ca``): one per listener.
    secret_prefix: str = "ragmesh"

    @property
    def mutual(self) -> bool:
        return self.ca_file is not None

    @property
    def server_secret(self) -> str:
        return f"{self.secret_prefix}_server_cert"

    @property
    def client_ca_secret(self) -> str:
        return f"{self.secret_prefix}_client_ca"

    def sds_path(self, secret: str) -> str:
        return str(Path(self.sds_dir) / f"{secret}.yaml")


@dataclass(frozen=True)
class UpstreamTlsOptions:
    """TLS from Envoy to the replicas: the services' CA, the name their certificates carry,
    and Envoy's client certificate (mTLS)."""

    #: CA that signed the replicas' certificates.
    ca_file: str
    #: Envoy's client certificate and key; None: TLS without a client certificate.
    cert_file: str | None = None
    key_file: str | None = None
    #: SNI sent and DNS name required in the replica's certificate; ``{component}`` is
    #: replaced by the cluster's component ("ragmesh-{component}.ragmesh.svc"). None: any
    #: certificate of the CA is accepted.
    server_name: str | None = "localhost"
    sds_dir: str = "sds"

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("the upstream client certificate and key go together")

    @property
    def mutual(self) -> bool:
        return self.cert_file is not None

    def sds_path(self, secret: str) -> str:
        return str(Path(self.sds_dir) / f"{secret}.yaml")


def _sds_config(tls: TlsOptions | UpstreamTlsOptions, secret: str) -> Config:
    return {
        "name": secret,
        "sds_config": {
            "path_config_source": {"path": tls.sds_path(secret), "watched_directory": {"path": tls.sds_dir}},
            "resource_api_version": "V3",
        },
    }


def transport_socket(tls: TlsOptions) -> Config:
    """The listener's DownstreamTlsContext (ALPN h2 for gRPC, http/1.1 for curl)."""
    common: Config = {
        "alpn_protocols": ["h2", "http/1.1"],
        "tls_certificate_sds_secret_configs": [_sds_config(tls, tls.server_secret)],
    }
    if tls.mutual:
        common["validation_context_sds_secret_config"] = _sds_config(tls, tls.client_ca_secret)
    context: Config = {"@type": _DOWNSTREAM, "common_tls_context": common}
    if tls.mutual:
        context["require_client_certificate"] = True
    return {"name": "envoy.transport_sockets.tls", "typed_config": context}


def upstream_transport_socket(tls: UpstreamTlsOptions, component: str, alpn: str = "h2") -> Config:
    """A cluster's UpstreamTlsContext: ALPN ``alpn`` (h2 for gRPC, http/1.1 for the HTTP
    API), SNI and SAN check of ``server_name``, the CA and Envoy's certificate by SDS."""
    validation: Config = {"validation_context_sds_secret_config": _sds_config(tls, UPSTREAM_CA_SECRET)}
    common: Config = {"alpn_protocols": [alpn]}
    context: Config = {"@type": _UPSTREAM, "common_tls_context": common}
    if tls.server_name is not None:
        name = tls.server_name.format(component=component)
        context["sni"] = name
        # The CA comes by SDS, the name to match from here: Envoy merges the two.
        san = {"san_type": "DNS", "matcher": {"exact": name}}
        validation["default_validation_context"] = {"match_typed_subject_alt_names": [san]}
    common["combined_validation_context"] = validation
    if tls.mutual:
        common["tls_certificate_sds_secret_configs"] = [_sds_config(tls, UPSTREAM_CERT_SECRET)]
    return {"name": "envoy.transport_sockets.tls", "typed_config": context}


def sds_resources(tls: TlsOptions | UpstreamTlsOptions) -> dict[str, Config]:
    """SDS file name -> content: the certificate (if any) and the CA (if any) of ``tls``."""
    cert: str | None = tls.cert_file
    key: str | None = tls.key_file
    ca: str | None = tls.ca_file
    if isinstance(tls, UpstreamTlsOptions):
        cert_secret, ca_secret = UPSTREAM_CERT_SECRET, UPSTREAM_CA_SECRET
    else:
        cert_secret, ca_secret = tls.server_secret, tls.client_ca_secret
    files: dict[str, Config] = {}
    if cert is not None and key is not None:
        body = {
            "certificate_chain": {"filename": cert},
            "private_key": {"filename": key},
            "watched_directory": {"path": str(Path(cert).parent)},
        }
        files[f"{cert_secret}.yaml"] = _secret(cert_secret, "tls_certificate", body)
    if ca is not None:
        validation = {"trusted_ca": {"filename": ca}, "watched_directory": {"path": str(Path(ca).parent)}}
        files[f"{ca_secret}.yaml"] = _secret(ca_secret, "validation_context", validation)
    return files


def _secret(name: str, kind: str, body: Config) -> Config:
    return {"resources": [{"@type": _SECRET_TYPE, "name": name, kind: body}]}


def write_sds(*settings: TlsOptions | UpstreamTlsOptions | None) -> None:
    """Write the SDS files of every given setting into its ``sds_dir`` (each by a rename,
    which Envoy watches for); None entries are skipped."""
    for tls in settings:
        if tls is None:
            continue
        directory = Path(tls.sds_dir)
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in sds_resources(tls).items():
            temporary = directory / f".{name}.tmp"
            temporary.write_text(yaml.safe_dump(content, sort_keys=False))
            temporary.replace(directory / name)
