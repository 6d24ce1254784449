"""TLS and mTLS on Envoy's client listener, with certificates served by file-based SDS.

Envoy reads the certificate and the client CA through SDS files (``path_config_source``)
in ``sds_dir``; each secret names its PEM files and a ``watched_directory``, so replacing
the PEM files by a rename in that directory (what a Kubernetes Secret volume does, or
``mv new.pem cert.pem``) is picked up without a restart. With ``ca_file`` set, clients
must present a certificate signed by that CA (mTLS); without it, TLS only.
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


@dataclass(frozen=True)
class TlsOptions:
    """Certificate files of the client listener and where its SDS files live."""

    cert_file: str
    key_file: str
    #: CA that signs client certificates: set it to require them (mTLS).
    ca_file: str | None = None
    #: Directory of the SDS files (written by :func:`write_sds`, or a ConfigMap in Kubernetes).
    sds_dir: str = "sds"

    @property
    def mutual(self) -> bool:
        return self.ca_file is not None

    def sds_path(self, secret: str) -> str:
        return str(Path(self.sds_dir) / f"{secret}.yaml")


def _sds_config(tls: TlsOptions, secret: str) -> Config:
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
        "tls_certificate_sds_secret_configs": [_sds_config(tls, SERVER_SECRET)],
    }
    if tls.mutual:
        common["validation_context_sds_secret_config"] = _sds_config(tls, CLIENT_CA_SECRET)
    context: Config = {"@type": _DOWNSTREAM, "common_tls_context": common}
    if tls.mutual:
        context["require_client_certificate"] = True
    return {"name": "envoy.transport_sockets.tls", "typed_config": context}


def sds_resources(tls: TlsOptions) -> dict[str, Config]:
    """SDS file name -> content: the server certificate and, with mTLS, the client CA."""
    cert_dir = str(Path(tls.cert_file).parent)
    files = {
        f"{SERVER_SECRET}.yaml": _secret(
            SERVER_SECRET,
            "tls_certificate",
            {
                "certificate_chain": {"filename": tls.cert_file},
                "private_key": {"filename": tls.key_file},
                "watched_directory": {"path": cert_dir},
            },
        )
    }
    if tls.ca_file is not None:
        ca_dir = str(Path(tls.ca_file).parent)
        validation = {"trusted_ca": {"filename": tls.ca_file}, "watched_directory": {"path": ca_dir}}
        files[f"{CLIENT_CA_SECRET}.yaml"] = _secret(CLIENT_CA_SECRET, "validation_context", validation)
    return files


def _secret(name: str, kind: str, body: Config) -> Config:
    return {"resources": [{"@type": _SECRET_TYPE, "name": name, kind: body}]}


def write_sds(tls: TlsOptions) -> None:
    """Write the SDS files into ``tls.sds_dir`` (each by a rename, which Envoy watches for)."""
    directory = Path(tls.sds_dir)
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in sds_resources(tls).items():
        temporary = directory / f".{name}.tmp"
        temporary.write_text(yaml.safe_dump(content, sort_keys=False))
        temporary.replace(directory / name)
