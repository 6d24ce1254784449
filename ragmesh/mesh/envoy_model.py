"""What an Envoy config is rendered from: the upstreams (the replicas of each component) and
the listener, admin, TLS, tracing and health-check options. Data only; the config itself is
:mod:`ragmesh.mesh.envoy`'s (routes and clusters in their own modules)."""

from __future__ import annotations

from dataclasses import dataclass

from ragmesh.mesh.envoy_tls import TlsOptions, UpstreamTlsOptions
from ragmesh.vocabulary.names import COMPONENTS


@dataclass(frozen=True)
class Upstream:
    """The replicas of one component: one Envoy cluster."""

    #: "orchestrator", "embedder", "retriever" or "generator".
    component: str
    #: (host, port) of each replica; with ``dns`` a hostname resolving to every pod.
    endpoints: tuple[tuple[str, int], ...]
    #: STRICT_DNS (every address a name resolves to, e.g. a headless Service) instead of STATIC.
    dns: bool = False
    #: The orchestrator's HTTP API port on the same hosts: Envoy routes ``/v1/`` there.
    http_port: int | None = None
    #: Or (host, port) of each replica's HTTP API, when they differ (replicas on one machine).
    http_endpoints: tuple[tuple[str, int], ...] = ()

    @property
    def has_http_api(self) -> bool:
        """Whether Envoy routes ``/v1/`` to this upstream's HTTP API."""
        return self.http_port is not None or bool(self.http_endpoints)

    def __post_init__(self) -> None:
        if self.component not in COMPONENTS:
            raise ValueError(f"unknown component {self.component!r}; expected one of {', '.join(COMPONENTS)}")
        if not self.endpoints:
            raise ValueError(f"{self.component}: at least one endpoint is needed")
        if (self.http_port is not None or self.http_endpoints) and self.component != "orchestrator":
            raise ValueError(f"{self.component}: only the orchestrator has an HTTP API port")

    @property
    def cluster(self) -> str:
        """The Envoy cluster name (the component's name)."""
        return self.component


@dataclass(frozen=True)
class EnvoyOptions:
    """Listener, admin, transcoding, tracing and health-check settings."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    #: What the public listener routes: the orchestrator only, unless configured otherwise.
    public_components: tuple[str, ...] = ("orchestrator",)
    #: The internal listener (every component, for the orchestrator); None: no such listener.
    internal_port: int | None = None
    #: Loopback on one machine; in Kubernetes the pod IP (a NetworkPolicy admits only the orchestrator).
    internal_host: str = "127.0.0.1"
    #: TLS (mTLS with a client CA) on the public listener; None: cleartext h2c.
    tls: TlsOptions | None = None
    #: mTLS on the internal listener (use its own ``secret_prefix``); None: cleartext h2c.
    internal_tls: TlsOptions | None = None
    #: TLS (mTLS with a client certificate) from Envoy to every replica; None: cleartext.
    upstream_tls: UpstreamTlsOptions | None = None
    #: The admin interface can stop Envoy: keep it on loopback (see ``stats_port``).
    admin_host: str = "127.0.0.1"
    admin_port: int = 9901
    #: When set, a second listener on ``listen_host`` exposing only ``/ready`` and
    #: ``/stats/prometheus`` of the admin interface and ``/healthz`` (Kubernetes probes
    #: and scraping).
    stats_port: int | None = None
    #: Descriptor set with imports (``gen/ragmesh.pb``): enables the gRPC-JSON transcoder.
    descriptor_set: str | None = None
    #: ``host:port`` of an OTLP/gRPC collector: Envoy adds its own spans.
    otlp_endpoint: str | None = None
    #: Resolve ``otlp_endpoint`` by DNS (a Kubernetes Service) instead of a literal IP.
    otlp_dns: bool = False
    #: Active health checks: interval, and failed checks before a replica is taken out.
    health_check_interval_s: float = 1.0
    unhealthy_threshold: int = 2
    #: A stream with no message either way for this long is reset (0 turns it off). Long
    #: on purpose: a generation may wait in a queue before its first token.
    stream_idle_timeout_s: float = 600.0
    #: Retries of a unary call (each on another replica when there is one).
    num_retries: int = 3
