"""The standard ``grpc.health.v1`` service, driven by the serve loop.

A service starts NOT_SERVING (for the empty name and each of its service names), turns
SERVING once its backend is loaded and warmed, and NOT_SERVING again when it begins to
shut down, so Kubernetes probes and Envoy's health checks stop sending it traffic.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
HEALTH_SERVICE_NAME = health.SERVICE_NAME


class HealthState:
    """Owns the health servicer of one server and the names it reports on."""

    def __init__(self, service_names: Iterable[str]) -> None:
        self.servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self.names = ["", *service_names]
        self.serving = False

    def register(self, server: grpc.aio.Server) -> None:
        """Add the health service to ``server``."""
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)

    async def set_serving(self, serving: bool) -> None:
        """Report every name as SERVING or NOT_SERVING."""
        self.serving = serving
        status = SERVING if serving else NOT_SERVING
        for name in self.names:
            await self.servicer.set(name, status)

    async def shutting_down(self) -> None:
        """Report NOT_SERVING for good: later changes are ignored."""
        self.serving = False
        await self.servicer.enter_graceful_shutdown()
