"""The orchestrator's connections to the embedder, retriever and generator.

Each component gets one channel (in the mesh all three point at Envoy) whose calls carry
an ``x-ragmesh-component`` header — Envoy routes health checks by it — and are counted
per component and status code for GetStats and Prometheus.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import Counter

from ragmesh.v1 import embedder_pb2_grpc, generator_pb2_grpc, retriever_pb2_grpc
from ragmesh.vocabulary.names import COMPONENT_HEADER, SERVICE_NAMES
from ragmesh.vocabulary.tls import ClientTls
from services.common.channels import open_channel
from services.common.interceptors import CallDone, call_interceptors, with_metadata
from services.orchestrator.core.domain import ComponentHealth
from services.orchestrator.core.stores import CallCounts

DOWNSTREAM_CALLS = Counter(
    "ragmesh_orchestrator_downstream_calls_total", "Calls to components, by status code", ["component", "code"]
)


class _ComponentCalls:
    """Adds the component header to each call and counts its outcome."""

    def __init__(self, component: str, counts: CallCounts) -> None:
        self.component = component
        self.counts = counts

    def prepare(self, details: grpc.aio.ClientCallDetails) -> tuple[grpc.aio.ClientCallDetails, CallDone | None]:
        self.counts.requests += 1
        return with_metadata(details, [(COMPONENT_HEADER, self.component)]), self._record

    def _record(self, code: grpc.StatusCode, text: str) -> None:
        if code not in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED):
            self.counts.errors += 1
        DOWNSTREAM_CALLS.labels(self.component, code.name).inc()


@dataclass
class Components:
    """Stubs for the three components, with per-component call counts."""

    embedder: embedder_pb2_grpc.EmbedderServiceAsyncStub
    retriever: retriever_pb2_grpc.RetrieverServiceAsyncStub
    generator: generator_pb2_grpc.GeneratorServiceAsyncStub
    health_stubs: dict[str, health_pb2_grpc.HealthStub]
    addresses: dict[str, str]
    counts: dict[str, CallCounts] = field(default_factory=dict)
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    @classmethod
    def connect(
        cls, embedder: str, retriever: str, generator: str, behind_envoy: bool = False, tls: ClientTls | None = None
    ) -> Components:
        """Open one channel per component (lazily connected; TLS with ``tls``). Behind Envoy,
        which retries unary calls but not streams, the channels retry only the generator's stream."""
        addresses = {"embedder": embedder, "retriever": retriever, "generator": generator}
        counts = {name: CallCounts() for name in addresses}
        retry_methods = [(SERVICE_NAMES["generator"], "Generate")] if behind_envoy else None
        channels = {
            name: open_channel(
                address,
                interceptors=call_interceptors(_ComponentCalls(name, counts[name]).prepare),
                retry_methods=retry_methods,
                tls=tls,
            )
            for name, address in addresses.items()
        }
        return cls(
            embedder=embedder_pb2_grpc.EmbedderServiceStub(channels["embedder"]),
            retriever=retriever_pb2_grpc.RetrieverServiceStub(channels["retriever"]),
            generator=generator_pb2_grpc.GeneratorServiceStub(channels["generator"]),
            health_stubs={name: health_pb2_grpc.HealthStub(channel) for name, channel in channels.items()},
            addresses=addresses,
            counts=counts,
            channels=list(channels.values()),
        )

    async def close(self) -> None:
        """Close every channel."""
        await asyncio.gather(*(channel.close(None) for channel in self.channels))

    def call_counts(self) -> dict[str, CallCounts]:
        """Calls per component since the channels opened."""
        return dict(self.counts)

    async def health(self) -> list[ComponentHealth]:
        """Each component's grpc.health.v1 status, checked side by side."""
        names = list(self.addresses)
        results = await asyncio.gather(*(self.health_of(name) for name in names))
        return [
            ComponentHealth(name, status, self.addresses[name], detail)
            for name, (status, detail) in zip(names, results, strict=True)
        ]

    async def health_of(self, component: str, timeout: float = 2.0) -> tuple[str, str]:
        """(status name, detail) of one component's grpc.health.v1 Check."""
        try:
            reply = await self.health_stubs[component].Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAMES[component]), timeout=timeout
            )
        except grpc.aio.AioRpcError as error:
            return "UNREACHABLE", f"{error.code().name}: {error.details()}"
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status), ""
