"""``python -m services.orchestrator``: serve the orchestrator until SIGTERM."""

from __future__ import annotations

import asyncio

import grpc

from ragmesh.v1 import orchestrator_pb2_grpc
from services.common.config import ServerSettings
from services.common.server import ServiceDefinition, run
from services.common.slot import BackendSlot
from services.orchestrator.config import OrchestratorConfig
from services.orchestrator.engine import Orchestrator
from services.orchestrator.servicer import SERVICE_NAME, OrchestratorServicer


def build(config: OrchestratorConfig) -> ServiceDefinition:
    """The orchestrator's service definition.

    It reports SERVING once its own parts (cross-encoder, workers) are ready; the
    components it calls may come up later — queries meanwhile get UNAVAILABLE, and
    CheckHealth shows which component is missing.
    """
    slot: BackendSlot[Orchestrator] = BackendSlot("orchestrator")
    servicer = OrchestratorServicer(slot)

    async def start() -> None:
        cross_encoder = None
        if config.cross_encoder_path:
            from services.orchestrator.rerank import CrossEncoder

            cross_encoder = await asyncio.to_thread(CrossEncoder, config.cross_encoder_path)
        orchestrator = Orchestrator(config, cross_encoder)
        orchestrator.start()
        slot.set(orchestrator)

    async def stop() -> None:
        if slot.ready:
            await slot.get().close()

    def register(server: grpc.aio.Server) -> None:
        orchestrator_pb2_grpc.add_OrchestratorServiceServicer_to_server(servicer, server)

    return ServiceDefinition("orchestrator", [SERVICE_NAME], register, start, stop)


def main() -> None:
    """Read the config and serve."""

    def configure() -> tuple[ServiceDefinition, ServerSettings]:
        config = OrchestratorConfig.from_env()
        return build(config), config.server

    run(configure)


if __name__ == "__main__":
    main()
