"""An embedder stand-in whose Embed calls can be held at a gate, so a test can stop a
worker at a known point of an ingestion (between two stored groups) — an event, not a
lucky sleep. Whitespace tokens, 8-dimensional vectors, grpc.health.v1 SERVING."""

from __future__ import annotations

import hashlib
import re
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ragmesh.v1 import embedder_pb2, embedder_pb2_grpc

DIMENSION = 8
WAIT_SECONDS = 120.0  # a held call gives up after this (the test failed or forgot to open)


class GatedEmbedder(embedder_pb2_grpc.EmbedderServiceServicer):
    """Answers the first ``free_calls`` Embed calls at once; later ones wait for ``release``."""

    def __init__(self, free_calls: int) -> None:
        self.free_calls = free_calls
        self.calls = 0
        self.held = threading.Event()  # set when a call is waiting at the gate
        self._open = threading.Event()
        self._lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        embedder_pb2_grpc.add_EmbedderServiceServicer_to_server(self, self.server)
        status = health.HealthServicer()
        for name in ("", "ragmesh.v1.EmbedderService"):
            status.set(name, health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(status, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{self.port}"

    def __enter__(self) -> GatedEmbedder:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.server.stop(0)

    def release(self) -> None:
        """Let every held and later call through."""
        self._open.set()

    def Info(
        self, request: embedder_pb2.EmbedderInfoRequest, context: grpc.ServicerContext
    ) -> embedder_pb2.EmbedderInfoResponse:
        return embedder_pb2.EmbedderInfoResponse(
            model_name="gated", dimension=DIMENSION, max_tokens=256, normalized=True, metric="COSINE", special_tokens=2
        )

    def Tokenize(
        self, request: embedder_pb2.TokenizeRequest, context: grpc.ServicerContext
    ) -> embedder_pb2.TokenizeResponse:
        texts = []
        for text in request.texts:
            spans = [match.span() for match in re.finditer(r"\S+", text)]
            texts.append(
                embedder_pb2.TokenizedText(
                    token_count=len(spans), starts=[s for s, _ in spans], ends=[e for _, e in spans]
                )
            )
        return embedder_pb2.TokenizeResponse(texts=texts)

    def Embed(self, request: embedder_pb2.EmbedRequest, context: grpc.ServicerContext) -> embedder_pb2.EmbedResponse:
        with self._lock:
            self.calls += 1
            gated = self.calls > self.free_calls
        if gated:
            self.held.set()
            if not self._open.wait(WAIT_SECONDS):
                context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the gate was never opened")
        return embedder_pb2.EmbedResponse(embeddings=[_vector(text) for text in request.texts], dimension=DIMENSION)


def _vector(text: str) -> embedder_pb2.Embedding:
    digest = hashlib.sha256(text.encode()).digest()
    values = [b / 255.0 + 0.01 for b in digest[:DIMENSION]]
    norm = sum(v * v for v in values) ** 0.5
    return embedder_pb2.Embedding(values=[v / norm for v in values])
