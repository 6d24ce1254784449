"""Session-wide fixtures: tracing to memory, the real models loaded once, service processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ragmesh.mesh.processes import ServiceProcess
from tests.support.redis_server import RedisServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

# In-process servers and clients in tests export spans here (set before any service code
# calls setup_tracing, which then keeps this provider).
SPANS = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(SPANS))
trace.set_tracer_provider(_provider)


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    """Spans finished in this test process."""
    return SPANS


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where service processes write their logs."""
    return tmp_path_factory.mktemp("service-logs")


@pytest.fixture(scope="session")
def embedder_service(log_dir: Path) -> Iterator[ServiceProcess]:
    """One real embedder process (the default MiniLM model) for the whole session."""
    service = ServiceProcess("embedder", {}, log_dir)
    try:
        service.wait_serving()
        yield service
    finally:
        service.terminate()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private Redis server for one test; the test may stop and restart it."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama with its tokenizer saved as a Hugging Face directory."""
    from tests.support.tiny_lm import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random cross-encoder (2-layer BERT) with MiniLM's tokenizer, saved once."""
    from tests.support.tiny_cross_encoder import save_tiny_cross_encoder

    return save_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder"))


# Small limits so the admission test can fill batch and queue with a few streams.
GENERATOR_TEST_LIMITS = {"RAGMESH_GENERATOR_MAX_BATCH_SIZE": "4", "RAGMESH_GENERATOR_MAX_WAITING": "2"}


@pytest.fixture(scope="session")
def generator_service(log_dir: Path) -> Iterator[ServiceProcess]:
    """One real generator process (SmolLM2 from the GGUF, converted once into the user's
    model cache) for the whole session."""
    service = ServiceProcess("generator", GENERATOR_TEST_LIMITS, log_dir)
    try:
        service.wait_serving(timeout=600.0)  # a first start converts the GGUF (~1 min on a busy machine)
        yield service
    finally:
        service.terminate()


@pytest.fixture(scope="session")
def retriever_service(log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One real retriever process on a fresh milvus-lite path for the whole session."""
    data = tmp_path_factory.mktemp("milvus") / "ragmesh.db"
    service = ServiceProcess("retriever", {"RAGMESH_RETRIEVER_URI": str(data)}, log_dir)
    try:
        service.wait_serving()
        yield service
    finally:
        service.terminate()
