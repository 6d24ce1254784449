"""``python -m services.generator``: serve the generator until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from ragmesh.v1 import generator_pb2_grpc
from services.common.server import ServiceDefinition, config_or_exit, run
from services.common.slot import slotted_service
from services.generator.config import GeneratorConfig
from services.generator.engine import Generator
from services.generator.servicer import SERVICE_NAME, GeneratorServicer

log = logging.getLogger(__name__)


def build(config: GeneratorConfig) -> ServiceDefinition:
    """The generator's service definition; the model loads and warms up in ``start``."""

    async def open_generator() -> Generator:
        generator = await asyncio.to_thread(load_generator, config)
        await generator.start()
        return generator

    return slotted_service(
        "generator",
        SERVICE_NAME,
        GeneratorServicer,
        generator_pb2_grpc.add_GeneratorServiceServicer_to_server,
        open_generator,
    )


def load_generator(config: GeneratorConfig) -> Generator:
    """Load the model named by ``config`` (slow the first time for a GGUF file)."""
    import torch

    from services.generator.loading import model_directory
    from services.generator.model import load_transformers_lm

    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    directory = model_directory(config)
    template = Path(config.chat_template).read_text() if config.chat_template else None
    backend = load_transformers_lm(directory, config.model_name, config.dtype, config.context_length, template)
    log.info("loaded %s from %s: %s", config.model_name, directory, backend.info)
    return Generator(backend, config.limits)


def prepare_model() -> None:
    """``--prepare-model``: convert the configured GGUF into the model cache and exit
    (image builds bake the converted model in; later starts only read it)."""
    from services.generator.loading import model_directory

    print(model_directory(config_or_exit(GeneratorConfig.from_env)))


def main() -> None:
    """Read the config and serve (or, with ``--prepare-model``, only prepare the model)."""
    if "--prepare-model" in sys.argv[1:]:
        prepare_model()
        return
    run(GeneratorConfig.from_env, build)


if __name__ == "__main__":
    main()
