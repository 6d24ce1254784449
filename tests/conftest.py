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

from tests.support.processes import ServiceProcess

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
