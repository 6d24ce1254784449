"""``python -m services.orchestrator``: serve the orchestrator until SIGTERM."""

from __future__ import annotations

import asyncio

from ragmesh.v1 import orchestrator_pb2_grpc
from services.common.server import ServiceDefinition, run
from services.common.slot import slotted_service
from services.orchestrator.config import OrchestratorConfig
from services.orchestrator.engine import Orchestrator
from services.orchestrator.servicer import SERVICE_NAME, OrchestratorServicer


def build(config: OrchestratorConfig) -> ServiceDefinition:
    """The orchestrator's service definition.

    It reports SERVING once its own parts (cross-encoder, workers) are ready; the
    components it calls may come up later — queries meanwhile get UNAVAILABLE, and
    CheckHealth shows which component is missing.
    """

    async def open_orchestrator() -> Orchestrator:
        cross_encoder = None
        if config.cross_encoder_path:
            from services.orchestrator.rerank import CrossEncoder

            cross_encoder = await asyncio.to_thread(CrossEncoder, config.cross_encoder_path)
        orchestrator = Orchestrator(config, cross_encoder)
        orchestrator.start()
        return orchestrator

    return slotted_service(
        "orchestrator",
        SERVICE_NAME,
        OrchestratorServicer,
        orchestrator_pb2_grpc.add_OrchestratorServiceServicer_to_server,
        open_orchestrator,
    )


def main() -> None:
    """Read the config and serve."""
    run(OrchestratorConfig.from_env, build)


if __name__ == "__main__":
    main()
