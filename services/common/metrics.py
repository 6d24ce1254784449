"""Prometheus metrics: the endpoint every service serves and the latency buckets all share.

Each service process serves its metrics on its own HTTP port. Per-RPC counters are
:mod:`services.common.grpc_metrics`'; component-specific metrics (batch sizes, tokens,
cache hits) are declared next to the code that updates them, all named ``ragmesh_*``.
"""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

# Buckets from 1 ms to 2 minutes: embeds take milliseconds, token streams take minutes.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def start_metrics_server(host: str, port: int) -> WSGIServer | None:
    """Serve ``/metrics`` on ``host:port`` in a background thread; port 0 disables it."""
    if port == 0:
        return None
    server, _thread = start_http_server(port, addr=host)
    return server
