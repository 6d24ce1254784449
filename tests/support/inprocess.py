"""Run a service definition in the test's own event loop (for in-memory tracing checks)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence

import grpc

from services.common.server import RunningServer, ServiceDefinition
from services.common.server_config import ServerSettings
from services.common.tls import ServerTls


def local_settings(component: str) -> ServerSettings:
    """Settings for an in-process server: any free port, no metrics endpoint, quick drain."""
    return dataclasses.replace(
        ServerSettings.from_env("embedder", {}),
        service=component,
        address="127.0.0.1:0",
        metrics_port=0,
        drain_seconds=0.0,
        grace_seconds=5.0,
    )


async def start_in_process(definition: ServiceDefinition, tls: ServerTls | None = None) -> tuple[RunningServer, str]:
    """Start ``definition`` (serving TLS with ``tls``) and return the running server and its address."""
    settings = dataclasses.replace(local_settings(definition.component), tls=tls)
    running = RunningServer(definition, settings)
    await running.start()
    return running, f"127.0.0.1:{running.port}"


def generic_definition(
    component: str,
    service: str,
    handlers: dict[str, grpc.RpcMethodHandler],
    start: Callable[[], Awaitable[None]] | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> ServiceDefinition:
    """A definition serving raw-bytes ``handlers`` under ``service`` (no protos needed)."""

    async def no_op() -> None:
        return None

    def register(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(service, handlers)])

    return ServiceDefinition(component, [service], register, start or no_op, interceptors=list(interceptors))
