"""Envoy clusters of the mesh (see :mod:`ragmesh.mesh.envoy`): one per component.

HTTP/2 upstreams (gRPC), least-request balancing, active ``grpc.health.v1`` checks of the
component's full service name, outlier detection on gateway and local-origin failures,
and circuit breakers raised for many concurrent streams. With ``upstream_tls`` every
cluster originates TLS (mTLS) to its replicas; the health checks use that socket too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ragmesh.mesh.envoy_routes import HTTP_API_CLUSTER
from ragmesh.mesh.envoy_tls import upstream_transport_socket
from ragmesh.vocabulary.names import SERVICE_NAMES

if TYPE_CHECKING:
    from ragmesh.mesh.envoy_model import EnvoyOptions, Upstream

Config = dict[str, Any]
_HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def socket_address(host: str, port: int) -> Config:
    """Envoy's address object."""
    return {"socket_address": {"address": host, "port_value": port}}


def seconds(value: float) -> str:
    """A protobuf Duration in Envoy's YAML form."""
    return f"{value:g}s"


def _http2_options() -> Config:
    return {
        _HTTP_PROTOCOL_OPTIONS: {
            "@type": f"type.googleapis.com/{_HTTP_PROTOCOL_OPTIONS}",
            "explicit_http_config": {
                # Pings find a dead pod whose connection was never closed.
                "http2_protocol_options": {"connection_keepalive": {"interval": "30s", "timeout": "5s"}}
            },
        }
    }


def _load_assignment(name: str, endpoints: Sequence[tuple[str, int]]) -> Config:
    lb_endpoints = [{"endpoint": {"address": socket_address(host, port)}} for host, port in endpoints]
    return {"cluster_name": name, "endpoints": [{"lb_endpoints": lb_endpoints}]}


def static_cluster(name: str, host: str, port: int, http2: bool, dns: bool = False) -> Config:
    """A one-endpoint cluster (the admin interface, an OTLP collector)."""
    cluster: Config = {
        "name": name,
        "type": "STRICT_DNS" if dns else "STATIC",
        "connect_timeout": "1s",
        "load_assignment": _load_assignment(name, [(host, port)]),
    }
    if http2:
        cluster["typed_extension_protocol_options"] = _http2_options()
    return cluster


def component_cluster(upstream: Upstream, options: EnvoyOptions) -> Config:
    """The cluster of one component's replicas."""
    interval = seconds(options.health_check_interval_s)
    cluster: Config = {
        "name": upstream.cluster,
        "type": "STRICT_DNS" if upstream.dns else "STATIC",
        "connect_timeout": "1s",
        "lb_policy": "LEAST_REQUEST",
        "typed_extension_protocol_options": _http2_options(),
        "load_assignment": _load_assignment(upstream.cluster, upstream.endpoints),
        "health_checks": [
            {
                "timeout": "1s",
                "interval": interval,
                # Without this a cluster that saw no traffic yet is checked once a minute.
                "no_traffic_interval": interval,
                "unhealthy_threshold": options.unhealthy_threshold,
                "healthy_threshold": 1,
                "grpc_health_check": {"service_name": SERVICE_NAMES[upstream.component]},
            }
        ],
        "outlier_detection": {
            # gRPC UNAVAILABLE maps to 503, a gateway failure; an application error
            # (INTERNAL, INVALID_ARGUMENT) says nothing about the replica, so only
            # gateway and local-origin (connect, reset) failures eject.
            "split_external_local_origin_errors": True,
            "consecutive_gateway_failure": 3,
            "enforcing_consecutive_gateway_failure": 100,
            "consecutive_local_origin_failure": 3,
            "enforcing_consecutive_local_origin_failure": 100,
            "enforcing_consecutive_5xx": 0,
            "enforcing_success_rate": 0,
            "interval": "2s",
            "base_ejection_time": "10s",
            # Never eject the last replica of two: it is better than none.
            "max_ejection_percent": 50,
        },
        "circuit_breakers": {"thresholds": [_limits("DEFAULT"), _limits("HIGH")]},
    }
    if upstream.dns:
        # Pods of a headless Service come and go; CoreDNS answers with a 5 s TTL.
        cluster["dns_refresh_rate"] = "5s"
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    if options.upstream_tls is not None:
        cluster["transport_socket"] = upstream_transport_socket(options.upstream_tls, upstream.component)
    return cluster


def http_api_cluster(upstream: Upstream, options: EnvoyOptions) -> Config:
    """The orchestrator's HTTP API (HTTP/1.1): on the same hosts as its gRPC port, or at
    the replicas' own ``http_endpoints``; checked with ``GET /v1/health`` (503 until ready)."""
    endpoints = list(upstream.http_endpoints)
    if not endpoints:
        assert upstream.http_port is not None
        endpoints = [(host, upstream.http_port) for host, _ in upstream.endpoints]
    interval = seconds(options.health_check_interval_s)
    cluster: Config = {
        "name": HTTP_API_CLUSTER,
        "type": "STRICT_DNS" if upstream.dns else "STATIC",
        "connect_timeout": "1s",
        "lb_policy": "LEAST_REQUEST",
        "load_assignment": _load_assignment(HTTP_API_CLUSTER, endpoints),
        "health_checks": [
            {
                "timeout": "1s",
                "interval": interval,
                "no_traffic_interval": interval,
                "unhealthy_threshold": options.unhealthy_threshold,
                "healthy_threshold": 1,
                "http_health_check": {"path": "/v1/health"},
            }
        ],
        "circuit_breakers": {"thresholds": [_limits("DEFAULT"), _limits("HIGH")]},
    }
    if upstream.dns:
        cluster["dns_refresh_rate"] = "5s"
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    if options.upstream_tls is not None:  # HTTPS, on the orchestrator's certificate
        cluster["transport_socket"] = upstream_transport_socket(options.upstream_tls, upstream.component, "http/1.1")
    return cluster


def _limits(priority: str) -> Config:
    # Envoy's defaults (1024 requests, 3 concurrent retries) are far below what a mesh of
    # long token streams holds open at once.
    return {
        "priority": priority,
        "max_connections": 10000,
        "max_pending_requests": 10000,
        "max_requests": 100000,
        "max_retries": 1000,
    }
