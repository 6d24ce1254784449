"""``python -m services.generator``: serve the generator until SIGTERM."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator

from ragmesh.v1 import generator_pb2_grpc
from services.common.server import ServiceDefinition, config_or_exit, run
from services.common.slot import slotted_service
from services.generator.backends.choice import load_generator, open_engine
from services.generator.config import GeneratorConfig
from services.generator.contract import GenerationEngine
from services.generator.servicer import SERVICE_NAME, GeneratorServicer

log = logging.getLogger(__name__)
__all__ = ["build", "load_generator", "main"]


def build(config: GeneratorConfig) -> ServiceDefinition:
    """The generator's service definition; the backend loads and warms up in ``start``.

    A backend whose readiness can change after start (the openai backend follows its
    remote server's health) drives the health service through ``readiness``.
    """
    opened: list[GenerationEngine] = []

    async def open_generator() -> GenerationEngine:
        opened.append(await open_engine(config))
        return opened[0]

    def readiness() -> AsyncIterator[bool] | None:
        return opened[0].readiness() if opened else None

    definition = slotted_service(
        "generator",
        SERVICE_NAME,
        GeneratorServicer,
        generator_pb2_grpc.add_GeneratorServiceServicer_to_server,
        open_generator,
    )
    definition.readiness = readiness
    return definition


def prepare_model() -> None:
    """``--prepare-model``: convert the configured GGUF into the model cache and exit
    (image builds bake the converted model in; later starts only read it)."""
    from services.generator.backends.loading import model_directory

    print(model_directory(config_or_exit(GeneratorConfig.from_env)))


def main() -> None:
    """Read the config and serve (or, with ``--prepare-model``, only prepare the model)."""
    if "--prepare-model" in sys.argv[1:]:
        prepare_model()
        return
    run(GeneratorConfig.from_env, build)


if __name__ == "__main__":
    main()
