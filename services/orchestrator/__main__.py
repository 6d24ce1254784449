"""``python -m services.orchestrator``: serve the orchestrator (gRPC, and in the same event loop
the HTTP surface: the OpenAI-compatible API, the documents API, MCP and the console) until SIGTERM."""

from __future__ import annotations

import logging

import grpc

from ragmesh.v1 import orchestrator_pb2_grpc
from ragmesh.vocabulary.experiments.model import ExperimentConfigError
from services.common.auth import security_interceptor
from services.common.errors import RagmeshError
from services.common.server import ServiceDefinition, StartupError, run
from services.common.slot import BackendSlot
from services.orchestrator.config import OrchestratorConfig
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.facade import Orchestrator
from services.orchestrator.transport.grpc.servicer import SERVICE_NAME, OrchestratorServicer
from services.orchestrator.transport.http.server import HttpServer
from services.orchestrator.transport.site import create_site
from services.orchestrator.wiring import WiringError, open_core

log = logging.getLogger(__name__)
#: How long start-up waits for the retriever to list collections for the experiments check.
EXPERIMENT_CHECK_SECONDS = 5.0


async def open_orchestrator(config: OrchestratorConfig) -> Orchestrator:
    """The core (built by the composition root), started, with its experiments checked."""
    try:
        orchestrator = await open_core(config.core)
    except WiringError as error:
        raise StartupError(str(error)) from None
    orchestrator.start()
    await orchestrator.start_parsers()
    await check_experiment_collections(orchestrator)
    return orchestrator


async def check_experiment_collections(orchestrator: Orchestrator) -> None:
    """Refuse to start when an enabled experiment reads a collection that does not exist
    (checked when the retriever answers; skipped with a warning when it does not yet)."""
    if not orchestrator.experiments.config.experiments:
        return
    try:
        existing = {c.name for c in await orchestrator.collections(Deadline(EXPERIMENT_CHECK_SECONDS))}
    except RagmeshError as error:
        log.warning("experiment collections not checked (the retriever did not answer: %s)", error.message)
        return
    try:
        orchestrator.experiments.config.check_collections(existing)
    except ExperimentConfigError as error:
        await orchestrator.close()
        raise StartupError(str(error)) from None


def build(config: OrchestratorConfig) -> ServiceDefinition:
    """The orchestrator's service definition.

    It reports SERVING once its own parts (cross-encoder, workers) are ready; the
    components it calls may come up later — queries meanwhile get UNAVAILABLE, and
    CheckHealth shows which component is missing. The HTTP API listens from the start
    (answering 503 until then) and stops after the gRPC server has drained.
    """
    slot: BackendSlot[Orchestrator] = BackendSlot("orchestrator")
    servicer = OrchestratorServicer(slot)
    security = security_interceptor("orchestrator", config.auth, config.quota)
    site = create_site(slot, security, config.mcp_allowed_hosts)
    http = HttpServer(site, config.http_addr, config.server.tls) if config.http_addr else None

    async def start() -> None:
        if security is not None:
            security.install_sighup()
        if http is not None:
            try:
                await http.start()
            except OSError as error:
                raise StartupError(f"the HTTP API cannot listen on {config.http_addr}: {error}") from None
        slot.set(await open_orchestrator(config))

    async def stop() -> None:
        if http is not None:
            await http.stop(config.server.grace_seconds)
        if slot.ready:
            await slot.get().close()

    def register(server: grpc.aio.Server) -> None:
        orchestrator_pb2_grpc.add_OrchestratorServiceServicer_to_server(servicer, server)

    interceptors = [security] if security is not None else []
    return ServiceDefinition("orchestrator", [SERVICE_NAME], register, start, stop, interceptors)


def main() -> None:
    """Read the config and serve."""
    run(OrchestratorConfig.from_env, build)


if __name__ == "__main__":
    main()
