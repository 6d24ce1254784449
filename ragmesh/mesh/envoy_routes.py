"""The route table of the mesh's Envoy listener (see :mod:`ragmesh.mesh.envoy`).

Order matters, Envoy takes the first match:

1. ``/grpc.health.v1.Health/`` and server reflection with ``x-ragmesh-component: <name>``
   go to that component; without the header they go to the orchestrator (so grpcurl and
   health probes through Envoy reach the service clients call); an unknown name matches
   nothing (gRPC UNIMPLEMENTED) rather than answering for the wrong component;
2. the streaming methods, by exact path, without retries;
3. every other method of a service, by its ``/ragmesh.v1.<Service>/`` prefix, with retries;
4. on the public listener, the orchestrator's HTTP surface on its HTTP port when its Upstream
   names one, without retries (a completion may stream): ``/v1/`` (the OpenAI-compatible API
   and the documents API), ``/mcp`` (the MCP server; its sessions stay on the replica that
   opened them, see :data:`MCP_SESSION_HEADER`) and ``/ui/`` (the web console).

Each listener gets the table of the components it exposes: the public one the
orchestrator's only (unless configured otherwise), the internal one every component's.

Every route disables the 15 s default route timeout and honours the caller's
``grpc-timeout`` without a cap, so a token stream lasts as long as the caller allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ragmesh.vocabulary.names import COMPONENT_HEADER, SERVICE_NAMES

if TYPE_CHECKING:
    from ragmesh.mesh.envoy_model import EnvoyOptions, Upstream

Route = dict[str, Any]

#: Methods that stream (either way): a retry would have to buffer and replay the request
#: body, and once a response started nothing can be retried anyway.
STREAMING_METHODS: dict[str, tuple[str, ...]] = {
    "generator": ("Generate",),
    "orchestrator": ("QueryStream", "Ingest", "WatchIngestJob"),
}
HEALTH_PREFIX = "/grpc.health.v1.Health/"
HTTP_API_PREFIX = "/v1/"
MCP_PATH = "/mcp"
CONSOLE_PATH = "/ui"
#: The orchestrator's HTTP routes on the public listener: (match, value).
HTTP_ROUTES = (("prefix", HTTP_API_PREFIX), ("path", MCP_PATH), ("path", CONSOLE_PATH), ("prefix", CONSOLE_PATH + "/"))
HTTP_API_CLUSTER = "orchestrator_http"
#: MCP's session id: Envoy's stateful-session filter (envelope) adds to it the replica that
#: answered, and routes the session's later requests back to that replica.
MCP_SESSION_HEADER = "mcp-session-id"
REFLECTION_PREFIXES = ("/grpc.reflection.v1alpha.ServerReflection/", "/grpc.reflection.v1.ServerReflection/")
#: What a unary call is retried on: the replica could not take it (gRPC UNAVAILABLE: still
#: loading or shutting down), or the call never got an answer (connection refused or
#: reset, HTTP/2 stream refused). RESOURCE_EXHAUSTED is not retried: the caller backs off.
RETRY_ON = "unavailable,connect-failure,refused-stream,reset"


def routes(upstreams: Sequence[Upstream], options: EnvoyOptions, http_api: bool = False) -> list[Route]:
    """Every route of a listener exposing ``upstreams``, most specific first."""
    present = [u.component for u in upstreams]
    table: list[Route] = []
    for prefix, retry in [(HEALTH_PREFIX, True), *((p, False) for p in REFLECTION_PREFIXES)]:
        table += _by_header(prefix, present, options if retry else None)
    for component in present:
        for method in STREAMING_METHODS.get(component, ()):
            table.append(_route({"path": f"/{SERVICE_NAMES[component]}/{method}"}, component, None))
    for component in present:
        table.append(_route({"prefix": f"/{SERVICE_NAMES[component]}/"}, component, options))
    if http_api and any(u.has_http_api for u in upstreams):
        table += [_route({kind: value}, HTTP_API_CLUSTER, None) for kind, value in HTTP_ROUTES]
    return table


def mcp_session_filter() -> Route:
    """The HTTP filter keeping an MCP session on its replica: the ``mcp-session-id`` the
    replica sets is enveloped with that replica's address, which Envoy reads back (and
    strips) on the session's next requests; a request without one is balanced as usual."""
    state = {
        "name": "envoy.http.stateful_session.envelope",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.http.stateful_session.envelope.v3.EnvelopeSessionState",
            "header": {"name": MCP_SESSION_HEADER},
        },
    }
    return {
        "name": "envoy.filters.http.stateful_session",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.stateful_session.v3.StatefulSession",
            "session_state": state,
        },
    }


def _by_header(prefix: str, present: Sequence[str], retry: EnvoyOptions | None) -> list[Route]:
    table = [_route({"prefix": prefix, "headers": [_header_is(component)]}, component, retry) for component in present]
    if "orchestrator" in present:
        absent = {"name": COMPONENT_HEADER, "present_match": True, "invert_match": True}
        table.append(_route({"prefix": prefix, "headers": [absent]}, "orchestrator", retry))
    return table


def _header_is(component: str) -> Route:
    return {"name": COMPONENT_HEADER, "string_match": {"exact": component}}


def _route(match: Route, cluster: str, retry: EnvoyOptions | None) -> Route:
    action: Route = {
        "cluster": cluster,
        # 0s: no route timeout (Envoy's default of 15 s would cut long token streams).
        "timeout": "0s",
        # Use the caller's grpc-timeout as the stream's deadline, with no cap (0s); for
        # gRPC calls this takes the place of the route timeout.
        "max_stream_duration": {"grpc_timeout_header_max": "0s"},
    }
    if retry is not None:
        action["retry_policy"] = _retry_policy(retry.num_retries)
    return {"match": match, "route": action}


def _retry_policy(num_retries: int) -> Route:
    return {
        "retry_on": RETRY_ON,
        "num_retries": num_retries,
        # Retry on another replica when there is one.
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
                },
            }
        ],
        "host_selection_retry_max_attempts": 5,
        "retry_back_off": {"base_interval": "0.025s", "max_interval": "0.25s"},
    }
