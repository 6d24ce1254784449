"""``python -m services.embedder``: serve the embedder until SIGTERM."""

from __future__ import annotations

import asyncio

from ragmesh.v1 import embedder_pb2_grpc
from services.common.server import ServiceDefinition, run
from services.common.slot import slotted_service
from services.embedder.config import EmbedderConfig
from services.embedder.engine import Embedder, Kind, RequestLimits
from services.embedder.servicer import SERVICE_NAME, EmbedderServicer


def build(config: EmbedderConfig) -> ServiceDefinition:
    """The embedder's service definition; the model loads in ``start``."""

    async def open_embedder() -> Embedder:
        embedder = await asyncio.to_thread(load_embedder, config)
        await embedder.start()
        return embedder

    return slotted_service(
        "embedder",
        SERVICE_NAME,
        EmbedderServicer,
        embedder_pb2_grpc.add_EmbedderServiceServicer_to_server,
        open_embedder,
    )


def load_embedder(config: EmbedderConfig) -> Embedder:
    """Load the encoder named by ``config`` (slow: reads the weights)."""
    import torch

    from services.embedder.model import TransformersEncoder

    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    backend = TransformersEncoder(
        config.model_path, config.model_name, config.pooling, config.normalize, config.max_tokens
    )
    return Embedder(
        backend,
        RequestLimits(config.max_texts, config.max_request_chars),
        config.batching,
        {Kind.QUERY: config.query_prefix, Kind.DOCUMENT: config.document_prefix},
    )


def main() -> None:
    """Read the config and serve."""
    run(EmbedderConfig.from_env, build)


if __name__ == "__main__":
    main()
