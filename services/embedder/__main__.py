"""``python -m services.embedder``: serve the embedder until SIGTERM.

``python -m services.embedder --prepare-model`` exports (and caches) the ONNX model for the
configured settings and exits, so an image build can do the slow part once.
"""

from __future__ import annotations

import argparse
import asyncio

from ragmesh.v1 import embedder_pb2_grpc
from services.common.logs import configure_logging
from services.common.server import ServiceDefinition, config_or_exit, run
from services.common.slot import slotted_service
from services.embedder.backend import EncoderBackend
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
    """Load the encoder named by ``config`` (slow: reads the weights, exports ONNX once)."""
    return Embedder(
        load_backend(config),
        RequestLimits(config.max_texts, config.max_request_chars),
        config.batching,
        {Kind.QUERY: config.query_prefix, Kind.DOCUMENT: config.document_prefix},
    )


def load_backend(config: EmbedderConfig) -> EncoderBackend:
    """The configured backend: transformers on torch, or the ONNX export on ONNX Runtime."""
    if config.backend == "onnx":
        from services.embedder.onnx_export import prepare_onnx_model
        from services.embedder.onnx_model import OnnxEncoder

        onnx_file = prepare_onnx_model(config.model_path, config.pooling, config.normalize, config.onnx)
        return OnnxEncoder(
            config.model_path,
            config.model_name,
            config.pooling,
            config.normalize,
            config.max_tokens,
            onnx_file=onnx_file,
            threads=config.onnx.threads,
        )
    import torch

    from services.embedder.model import TransformersEncoder

    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    return TransformersEncoder(
        config.model_path, config.model_name, config.pooling, config.normalize, config.max_tokens
    )


def prepare_model() -> None:
    """Export the ONNX model of the configured settings into the cache and say where."""
    from services.embedder.onnx_export import prepare_onnx_model

    config = config_or_exit(EmbedderConfig.from_env)
    configure_logging(config.server.log_level)
    onnx_file = prepare_onnx_model(config.model_path, config.pooling, config.normalize, config.onnx)
    print(f"ONNX model ready ({config.onnx.quantize}): {onnx_file}")


def main() -> None:
    """Read the config and serve (or only prepare the model)."""
    parser = argparse.ArgumentParser(prog="python -m services.embedder", description=__doc__)
    parser.add_argument(
        "--prepare-model", action="store_true", help="export and cache the ONNX model for the configured settings"
    )
    if parser.parse_args().prepare_model:
        prepare_model()
        return
    run(EmbedderConfig.from_env, build)


if __name__ == "__main__":
    main()
