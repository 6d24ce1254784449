"""Choosing the generator's backend from ``RAGMESH_GENERATOR_BACKEND``.

- ``llamacpp`` (default): a GGUF file in llama.cpp, below the step-level scheduler (the
  ``llamacpp`` extra, in `make venv`);
- ``transformers``: a Hugging Face model (or a GGUF converted once) below the same
  step-level scheduler;
- ``openai``: an OpenAI-compatible server, through :class:`RemoteGenerator`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from services.generator.config import GeneratorConfig
from services.generator.contract import GenerationEngine
from services.generator.engine import Generator

log = logging.getLogger(__name__)


async def open_engine(config: GeneratorConfig) -> GenerationEngine:
    """Load (or connect) and warm up the configured backend."""
    import asyncio

    if config.backend == "openai":
        return await _open_remote(config)
    generator = await asyncio.to_thread(load_generator, config)
    await generator.start()
    return generator


def load_generator(config: GeneratorConfig) -> Generator:
    """The local-model engine of the transformers or llamacpp backend (slow: loads weights)."""
    template = Path(config.chat_template).read_text() if config.chat_template else None
    if config.backend == "llamacpp":
        try:
            from services.generator.backends.llamacpp import load_llamacpp_lm
        except ImportError as error:
            raise RuntimeError(
                f"RAGMESH_GENERATOR_BACKEND=llamacpp needs llama-cpp-python: pip install 'ragmesh[llamacpp]' ({error})"
            ) from None
        backend = load_llamacpp_lm(
            Path(config.model_path),
            model_name=config.model_name,
            context_length=config.context_length,
            slots=config.limits.max_batch_size,
            threads=config.llamacpp_threads,
            batch_threads=config.llamacpp_batch_threads,
            chat_template=template,
        )
        return Generator(backend, config.limits)
    import torch

    from services.generator.backends.loading import model_directory
    from services.generator.backends.transformers import load_transformers_lm

    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    directory = model_directory(config)
    lm = load_transformers_lm(directory, config.model_name, config.dtype, config.context_length, template)
    log.info("loaded %s from %s: %s", config.model_name, directory, lm.info)
    return Generator(lm, config.limits)


async def _open_remote(config: GeneratorConfig) -> GenerationEngine:
    import asyncio

    from services.generator.backends.remote import RemoteGenerator
    from services.generator.backends.token_counting import token_counter

    assert config.openai is not None  # from_env sets it for this backend
    counter = await asyncio.to_thread(token_counter, config.openai.tokenizer)
    settings = config.openai
    if config.model_name and not settings.model:
        log.info("reporting the remote model as %s", config.model_name)
    engine = RemoteGenerator(settings, config.limits, counter, config.context_length)
    if config.model_name:
        engine.model_name = config.model_name
    await engine.start()
    return engine
