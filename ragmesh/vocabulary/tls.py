"""What a TLS client trusts and presents (the CA of the server's certificate, and for mTLS its
own certificate and key), read from PEM files: the orchestrator's channels to the components,
the health probe and ``ragmesh up``'s readiness checks use it alike."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc


class TlsFileError(RuntimeError):
    """A certificate, key or CA file is missing, unreadable or not what it should be."""


@dataclass(frozen=True)
class ClientTls:
    """What a channel trusts (the CA of the server's certificate) and presents (for mTLS)."""

    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None
    #: Name checked in the server's certificate instead of the target's host.
    server_name: str | None = None
    source: str = "COMPONENTS_TLS_"

    def credentials(self) -> grpc.ChannelCredentials:
        """The channel credentials; TlsFileError when a file cannot be read."""
        ca = read_pem(self.ca_file, self.source + "CA")
        if self.cert_file is None or self.key_file is None:
            return grpc.ssl_channel_credentials(ca)
        check_pair(self.cert_file, self.key_file, self.source)
        cert, key = read_pem(self.cert_file, self.source + "CERT"), read_pem(self.key_file, self.source + "KEY")
        return grpc.ssl_channel_credentials(ca, key, cert)

    def files(self) -> dict[str, str | None]:
        """The PEM file paths (``ca``, ``cert``, ``key``), as a state file records them."""
        return {"ca": self.ca_file, "cert": self.cert_file, "key": self.key_file}

    def options(self) -> list[tuple[str, Any]]:
        """Channel arguments (the server name override, when set)."""
        return [] if self.server_name is None else [("grpc.ssl_target_name_override", self.server_name)]


def read_pem(path: str, variable: str) -> bytes:
    """The file's bytes; TlsFileError naming ``variable`` when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise TlsFileError(f"{variable}={path}: cannot read it ({error.strerror})") from None


def check_pair(cert: str, key: str, prefix: str) -> None:
    """TlsFileError unless ``cert`` and ``key`` are PEM files of one key pair (gRPC itself
    would only fail at the first handshake, with nothing naming the file)."""
    for path, name in ((cert, "CERT"), (key, "KEY")):
        read_pem(path, prefix + name)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except ssl.SSLError as error:
        raise TlsFileError(
            f"{prefix}CERT={cert} and {prefix}KEY={key} are not a PEM certificate and its key ({error.reason})"
        ) from None
