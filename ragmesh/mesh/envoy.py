"""Generate the Envoy configuration of the mesh: one module for ``ragmesh up`` and Kubernetes.

``render`` returns plain data (dicts and lists) in Envoy's v3 static-config shape and
``write`` dumps it as YAML. The same function produces the loopback config of
``ragmesh up`` (STATIC clusters of 127.0.0.1 ports) and the Kubernetes ConfigMap
(STRICT_DNS clusters over the headless Services), so both meshes behave alike:

- a public listener for clients: HTTP/1.1 and HTTP/2 (h2c, or TLS/mTLS with certificates
  from SDS files, see :mod:`ragmesh.mesh.envoy_tls`) that routes only the
  ``public_components`` (the orchestrator, its health and reflection, and ``/v1/``, ``/mcp``
  and ``/ui/`` to the orchestrator's HTTP port, MCP sessions kept on their replica) — the
  components behind it are not callable from outside;
- an internal listener (loopback, or the cluster-internal port) routing every component:
  the orchestrator calls the embedder, retriever and generator there (optionally mTLS);
- one cluster per component: HTTP/2 upstreams, least-request balancing, active
  ``grpc.health.v1`` checks of the component's full service name (over the cluster's TLS
  when Envoy originates TLS/mTLS to the replicas), outlier detection on
  gateway and local-origin failures, circuit breakers raised for many concurrent streams;
- routes by gRPC service path; health and reflection go to the orchestrator unless the
  header ``x-ragmesh-component`` names another component;
- unary methods retry on UNAVAILABLE, connect failure, reset and refused stream; the
  streaming methods get exact-path routes without retries (a retry would replay a body);
- no timeout that cuts a long token stream: route timeout 0s, the client's
  ``grpc-timeout`` honoured without a cap, a long stream idle timeout;
- optional gRPC-JSON transcoding of ``OrchestratorService`` (``POST /query`` ...) and
  optional OpenTelemetry spans; ``traceparent`` passes through untouched otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ragmesh.mesh import envoy_routes as routes
from ragmesh.mesh.envoy_clusters import component_cluster, http_api_cluster, seconds, socket_address, static_cluster
from ragmesh.mesh.envoy_model import EnvoyOptions, Upstream
from ragmesh.mesh.envoy_tls import TlsOptions, UpstreamTlsOptions, transport_socket
from ragmesh.vocabulary.names import COMPONENTS, SERVICE_NAMES

__all__ = [
    "COMPONENTS",
    "SERVICE_NAMES",
    "EnvoyOptions",
    "TlsOptions",
    "Upstream",
    "UpstreamTlsOptions",
    "render",
    "write",
]

Config = dict[str, Any]
OTEL_CLUSTER = "opentelemetry_collector"
ADMIN_CLUSTER = "envoy_admin"
_HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"


def render(upstreams: Sequence[Upstream], options: EnvoyOptions | None = None) -> Config:
    """The whole Envoy bootstrap for ``upstreams`` as plain data."""
    options = options or EnvoyOptions()
    components = [u.component for u in upstreams]
    if len(set(components)) != len(components):
        raise ValueError(f"one Upstream per component, got {components}")
    unknown = set(options.public_components) - set(COMPONENTS)
    if unknown:
        raise ValueError(f"unknown public component(s) {', '.join(sorted(unknown))}")
    public = [u for u in upstreams if u.component in options.public_components]
    listeners = [_client_listener("clients", options.listen_host, options.listen_port, public, options)]
    if options.internal_port is not None:
        internal = _client_listener("internal", options.internal_host, options.internal_port, upstreams, options)
        listeners.append(internal)
    clusters = [component_cluster(u, options) for u in upstreams]
    clusters += [http_api_cluster(u, options) for u in public if u.has_http_api]
    if options.stats_port is not None:
        listeners.append(_stats_listener(options))
        clusters.append(static_cluster(ADMIN_CLUSTER, "127.0.0.1", options.admin_port, http2=False))
    if options.otlp_endpoint:
        host, _, port = options.otlp_endpoint.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"otlp_endpoint must be host:port, got {options.otlp_endpoint!r}")
        clusters.append(static_cluster(OTEL_CLUSTER, host, int(port), http2=True, dns=options.otlp_dns))
    return {
        "node": {"id": "ragmesh-envoy", "cluster": "ragmesh"},
        "admin": {"address": socket_address(options.admin_host, options.admin_port)},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }


def write(path: Path, upstreams: Sequence[Upstream], options: EnvoyOptions | None = None) -> Path:
    """Render and write the config as YAML to ``path``; return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump(render(upstreams, options)))
    return path


def dump(config: Config) -> str:
    """YAML text of a rendered config (stable key order, for committed files)."""
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=120)


def _client_listener(name: str, host: str, port: int, upstreams: Sequence[Upstream], options: EnvoyOptions) -> Config:
    public = name == "clients"
    manager: Config = {
        "@type": f"type.googleapis.com/{_HCM}",
        "stat_prefix": "ingress" if public else name,
        # AUTO: HTTP/1.1 for curl and browsers, HTTP/2 prior knowledge (h2c) for gRPC.
        "codec_type": "AUTO",
        "stream_idle_timeout": seconds(options.stream_idle_timeout_s),
        "request_timeout": "0s",
        "http2_protocol_options": {"max_concurrent_streams": 1024},
        "access_log": [_stdout_access_log()],
        "route_config": {
            "name": "ragmesh",
            "virtual_hosts": [
                {"name": "ragmesh", "domains": ["*"], "routes": routes.routes(upstreams, options, http_api=public)}
            ],
        },
        "http_filters": [*_transcoder(options), _filter("envoy.filters.http.router", "router.v3.Router")],
    }
    if public and any(u.has_http_api for u in upstreams):
        manager["http_filters"].insert(0, routes.mcp_session_filter())
    if options.otlp_endpoint:
        manager["tracing"] = _tracing()
    listener = _listener(name, host, port, manager)
    tls = options.tls if public else options.internal_tls
    if tls is not None:
        listener["filter_chains"][0]["transport_socket"] = transport_socket(tls)
    # INBOUND: the preStop drain (/drain_listeners?inboundonly) closes the client listeners
    # only, and the stats listener keeps answering the kubelet's probes meanwhile.
    listener["traffic_direction"] = "INBOUND"
    return listener


def _listener(name: str, host: str, port: int, manager: Config) -> Config:
    hcm = {"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}
    return {"name": name, "address": socket_address(host, port), "filter_chains": [{"filters": [hcm]}]}


def _filter(name: str, type_suffix: str, **config: Any) -> Config:
    typed = {"@type": f"type.googleapis.com/envoy.extensions.filters.http.{type_suffix}", **config}
    return {"name": name, "typed_config": typed}


def _transcoder(options: EnvoyOptions) -> list[Config]:
    if options.descriptor_set is None:
        return []
    return [
        _filter(
            "envoy.filters.http.grpc_json_transcoder",
            "grpc_json_transcoder.v3.GrpcJsonTranscoder",
            proto_descriptor=options.descriptor_set,
            services=[SERVICE_NAMES["orchestrator"]],
            # JSON out: proto field names (top_k, trace_id) like the .proto and the Python
            # client, zero values printed, enums by name; streams as one JSON object per line.
            print_options={
                "add_whitespace": False,
                "always_print_primitive_fields": True,
                "always_print_enums_as_ints": False,
                "preserve_proto_field_names": True,
                "stream_newline_delimited": True,
            },
            convert_grpc_status=True,
            case_insensitive_enum_parsing=True,
            ignore_unknown_query_parameters=True,
        )
    ]


def _tracing() -> Config:
    return {
        "random_sampling": {"value": 100},
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "grpc_service": {"envoy_grpc": {"cluster_name": OTEL_CLUSTER}, "timeout": "1s"},
                "service_name": "envoy",
            },
        },
    }


def _stdout_access_log() -> Config:
    line = (
        "[%START_TIME%] %REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL% %RESPONSE_CODE% "
        "grpc=%GRPC_STATUS% flags=%RESPONSE_FLAGS% %DURATION%ms upstream=%UPSTREAM_HOST% "
        "attempts=%UPSTREAM_REQUEST_ATTEMPT_COUNT%\n"
    )
    return {
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": {"text_format_source": {"inline_string": line}},
        },
    }


def _stats_listener(options: EnvoyOptions) -> Config:
    manager = {
        "@type": f"type.googleapis.com/{_HCM}",
        "stat_prefix": "stats",
        "codec_type": "AUTO",
        "route_config": {
            "name": "stats",
            "virtual_hosts": [
                {
                    "name": "stats",
                    "domains": ["*"],
                    "routes": [
                        {"match": {"path": "/ready"}, "route": {"cluster": ADMIN_CLUSTER}},
                        {"match": {"path": "/stats/prometheus"}, "route": {"cluster": ADMIN_CLUSTER}},
                        # Liveness: Envoy answers at all (/ready turns 503 while it drains).
                        {"match": {"path": "/healthz"}, "direct_response": {"status": 200}},
                        {"match": {"prefix": "/"}, "direct_response": {"status": 404}},
                    ],
                }
            ],
        },
        "http_filters": [_filter("envoy.filters.http.router", "router.v3.Router")],
    }
    return _listener("stats", options.listen_host, options.stats_port or 0, manager)
