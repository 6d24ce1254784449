"""The main job (``make demo``): start the embedder, embed a sentence, stop.

Later issues extend this to the whole mesh: ingest the sample corpus and stream an answer.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import grpc

from ragmesh.mesh.processes import ServiceProcess
from ragmesh.v1 import embedder_pb2, embedder_pb2_grpc

SENTENCE = "ragmesh answers questions from documents through a mesh of gRPC services."


def main() -> None:
    """Start the embedder, print what it says about itself and one embedding."""
    service = ServiceProcess("embedder", {}, Path(tempfile.mkdtemp(prefix="ragmesh-demo-")))
    print(f"starting the embedder on {service.address} (log: {service.log_path}) ...")
    try:
        service.wait_serving()
        with grpc.insecure_channel(service.address) as channel:
            stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
            info = stub.Info(embedder_pb2.EmbedderInfoRequest())
            reply = stub.Embed(embedder_pb2.EmbedRequest(texts=[SENTENCE]))
        values = list(reply.embeddings[0].values)
        print(f"model {info.model_name}: dimension {info.dimension}, max tokens {info.max_tokens}")
        print(f"{SENTENCE!r} -> {reply.token_counts[0]} tokens -> [{', '.join(f'{v:.4f}' for v in values[:6])}, ...]")
    finally:
        print(f"embedder stopped (exit code {service.terminate()})")


if __name__ == "__main__":
    main()
