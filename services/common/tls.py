"""TLS and mTLS of the hops behind Envoy: servers that serve a certificate (and, with a
client CA, require one from their callers), and channels that present one.

Server side (every service): ``RAGMESH_<SERVICE>_TLS_CERT`` and ``_TLS_KEY`` turn TLS on;
``_TLS_CLIENT_CA`` also requires a client certificate signed by that CA (mTLS: only Envoy,
which holds one, can call a replica). The files are read again when they change on disk
(:class:`ReloadingCertificates`, checked at every new connection), so a renewed
certificate — a Kubernetes Secret volume update, ``mv new.pem cert.pem`` — is served
without a restart.

Client side (the orchestrator and the worker, calling the components through Envoy's
internal listener): ``RAGMESH_<SERVICE>_COMPONENTS_TLS_CA`` turns TLS on (the CA of
Envoy's certificate), ``_COMPONENTS_TLS_CERT`` / ``_KEY`` add the client certificate
(mTLS), ``_COMPONENTS_TLS_SERVER_NAME`` overrides the name checked in Envoy's
certificate (by default the host of the address). Channels read the files when they open.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import grpc

from ragmesh.vocabulary.tls import ClientTls, TlsFileError, check_pair, read_pem
from services.common.config import ConfigError, Env

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerTls:
    """The certificate a server serves and, for mTLS, the CA of its callers' certificates."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    #: The variables' prefix (``RAGMESH_EMBEDDER_TLS_``), for error messages.
    source: str = "TLS_"

    @property
    def mutual(self) -> bool:
        """Whether callers must present a certificate."""
        return self.client_ca_file is not None

    @classmethod
    def from_env(cls, env: Env) -> ServerTls | None:
        """``TLS_CERT`` / ``TLS_KEY`` / ``TLS_CLIENT_CA`` of ``env``; None when unset."""
        cert, key, ca = env.raw("tls_cert"), env.raw("tls_key"), env.raw("tls_client_ca")
        if cert is None and key is None and ca is None:
            return None
        if cert is None or key is None:
            both = f"{env.name('tls_cert')} and {env.name('tls_key')}"
            raise ConfigError(
                env.name("tls_cert" if cert is None else "tls_key"),
                f"{both} go together ({env.name('tls_client_ca')} needs both)",
            )
        return cls(cert, key, ca, env.name("tls_"))

    def load(self) -> grpc.ServerCredentials:
        """Credentials that re-read the files when they change; TlsFileError when they
        cannot be used now (missing, unreadable, key not matching the certificate)."""
        return ReloadingCertificates(self).credentials()


class ReloadingCertificates:
    """gRPC's certificate-configuration fetcher over files: a new configuration whenever
    a file's identity (inode, size, mtime) changed, the current one otherwise. A renewal
    caught half-written (key and certificate not matching yet) keeps the old pair."""

    def __init__(self, tls: ServerTls) -> None:
        self.tls = tls
        self._lock = threading.Lock()
        self._stamp = self._stamps()
        #: Files that did not make a usable configuration (None: no such state yet).
        self._failed: tuple[tuple[int, int, int], ...] | None = None
        self._initial = self._configuration()

    def credentials(self) -> grpc.ServerCredentials:
        """Dynamic server credentials starting from the files as they are now."""
        return grpc.dynamic_ssl_server_credentials(self._initial, self.fetch, self.tls.mutual)

    def fetch(self) -> Any:
        """Called by gRPC at every new connection: None keeps the current configuration."""
        with self._lock:
            try:
                stamp = self._stamps()
            except TlsFileError as error:
                return self._keep((), error)
            if stamp in (self._stamp, self._failed):
                return None
            try:
                configuration = self._configuration()
            except TlsFileError as error:
                return self._keep(stamp, error)
            self._stamp = stamp
            log.info("serving the renewed certificate %s", self.tls.cert_file)
            return configuration

    def _keep(self, state: tuple[tuple[int, int, int], ...], error: TlsFileError) -> None:
        """Keep the current configuration; warn once per state of the files, not per connection."""
        if state != self._failed:
            log.warning("keeping the current certificate: %s", error)
        self._failed = state

    def _files(self) -> list[tuple[str, str]]:
        tls = self.tls
        files = [(tls.cert_file, tls.source + "CERT"), (tls.key_file, tls.source + "KEY")]
        if tls.client_ca_file is not None:
            files.append((tls.client_ca_file, tls.source + "CLIENT_CA"))
        return files

    def _stamps(self) -> tuple[tuple[int, int, int], ...]:
        stamps = []
        for path, variable in self._files():
            try:
                status = os.stat(path)
            except OSError as error:
                raise TlsFileError(f"{variable}={path}: cannot read it ({error.strerror})") from None
            stamps.append((status.st_ino, status.st_size, status.st_mtime_ns))
        return tuple(stamps)

    def _configuration(self) -> Any:
        tls = self.tls
        check_pair(tls.cert_file, tls.key_file, tls.source)
        pair = (read_pem(tls.key_file, tls.source + "KEY"), read_pem(tls.cert_file, tls.source + "CERT"))
        ca = None
        if tls.client_ca_file is not None:
            _check_ca(tls.client_ca_file, tls.source + "CLIENT_CA")
            ca = read_pem(tls.client_ca_file, tls.source + "CLIENT_CA")
        return grpc.ssl_server_certificate_configuration([pair], root_certificates=ca)


def _check_ca(path: str, variable: str) -> None:
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError) as error:
        raise TlsFileError(f"{variable}={path}: not a PEM CA certificate ({error})") from None


def client_tls_from_env(env: Env, field: str = "components_tls") -> ClientTls | None:
    """``<FIELD>_CA`` / ``_CERT`` / ``_KEY`` / ``_SERVER_NAME`` of ``env``; None when unset."""
    ca, cert, key = env.raw(f"{field}_ca"), env.raw(f"{field}_cert"), env.raw(f"{field}_key")
    if ca is None:
        if cert is not None or key is not None:
            raise ConfigError(env.name(f"{field}_ca"), "a client certificate needs the CA of the server's")
        return None
    if (cert is None) != (key is None):
        raise ConfigError(
            env.name(f"{field}_cert" if cert is None else f"{field}_key"),
            f"{env.name(f'{field}_cert')} and {env.name(f'{field}_key')} go together",
        )
    return ClientTls(ca, cert, key, env.raw(f"{field}_server_name"), env.name(f"{field}_"))
