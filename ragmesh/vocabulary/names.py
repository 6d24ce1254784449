"""Names the components and the mesh agree on: default ports, gRPC service names, the
header that routes the orchestrator's calls through Envoy, and what a name may look like. Standard library only, so the
launcher and scripts can import it without loading any service code."""

from __future__ import annotations

import re

#: The components that serve a ``ragmesh.v1`` service.
COMPONENTS = ("orchestrator", "embedder", "retriever", "generator")
#: Default gRPC port of each process (the worker's serves only grpc.health.v1); the first
#: replica of ``ragmesh up`` uses these too.
DEFAULT_PORTS: dict[str, int] = {
    "orchestrator": 50051,
    "embedder": 50052,
    "retriever": 50053,
    "generator": 50054,
    "worker": 50055,
}
#: Default port of the orchestrator's OpenAI-compatible HTTP API.
DEFAULT_HTTP_PORT = 50050
#: Default Prometheus port of each component.
DEFAULT_METRICS_PORTS: dict[str, int] = {
    "orchestrator": 9101,
    "embedder": 9102,
    "retriever": 9103,
    "generator": 9104,
    "worker": 9105,
}
#: The gRPC service each component serves (health checks and Envoy routes use these).
SERVICE_NAMES: dict[str, str] = {c: f"ragmesh.v1.{c.capitalize()}Service" for c in COMPONENTS}
#: Metadata naming the component a call is for: Envoy routes on it, so that health checks
#: (one service, ``grpc.health.v1``) reach the right cluster.
COMPONENT_HEADER = "x-ragmesh-component"
#: Collection names and metadata keys: a letter, then letters, digits and underscores (at
#: most 64 in all) — safe inside a Milvus expression and in a Redis key.
IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
