"""What every service's serve loop is configured with: where to listen, how to stop, TLS —
``RAGMESH_<SERVICE>_ADDR``, ``_METRICS_PORT``, ``_GRACE_SECONDS``, ``_TLS_*``, ``_HEALTH_PORT`` and friends."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ragmesh.vocabulary.names import DEFAULT_METRICS_PORTS, DEFAULT_PORTS
from services.common.config import MIB, Env
from services.common.tls import ServerTls


@dataclass(frozen=True)
class ServerSettings:
    """What every service's serve loop needs: where to listen and how to stop."""

    service: str
    address: str
    metrics_port: int
    metrics_host: str
    grace_seconds: float
    drain_seconds: float
    max_message_bytes: int
    log_level: str
    #: TLS (mTLS with a client CA) on the gRPC port: ``_TLS_CERT``, ``_TLS_KEY``, ``_TLS_CLIENT_CA``.
    tls: ServerTls | None = None
    #: A second, cleartext port serving grpc.health.v1 only (0: none), on the gRPC port's
    #: interface: the kubelet's native gRPC probe where the gRPC port requires mTLS.
    health_port: int = 0

    @property
    def health_address(self) -> str:
        """``host:health_port`` (the gRPC address's host)."""
        return f"{self.address.rpartition(':')[0]}:{self.health_port}"

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> ServerSettings:
        """Read ``RAGMESH_<SERVICE>_ADDR``, ``_METRICS_PORT``, ``_TLS_*``, ``_HEALTH_PORT`` and friends."""
        env = Env(service, environ)
        return cls(
            service=service,
            address=env.address("addr", f"127.0.0.1:{DEFAULT_PORTS[service]}"),
            metrics_port=env.integer("metrics_port", DEFAULT_METRICS_PORTS[service], 0, 65535),
            metrics_host=env.text("metrics_host", "127.0.0.1"),
            grace_seconds=env.number("grace_seconds", 30.0, 0.0, 3600.0),
            drain_seconds=env.number("drain_seconds", 0.5, 0.0, 300.0),
            max_message_bytes=env.integer("max_message_mb", 64, 1, 1024) * MIB,
            log_level=env.choice("log_level", "info", ("debug", "info", "warning", "error")),
            tls=ServerTls.from_env(env),
            health_port=env.integer("health_port", 0, 0, 65535),
        )
