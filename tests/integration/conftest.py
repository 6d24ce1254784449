"""Fixtures of the integration tests that need the real components together."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragmesh.mesh.processes import ServiceProcess
from tests.support.retriever import Stub, retriever_stub
from tests.support.stack import start_orchestrator


@pytest.fixture(scope="session")
def orchestrator(
    log_dir: Path,
    embedder_service: ServiceProcess,
    retriever_service: ServiceProcess,
    generator_service: ServiceProcess,
) -> Iterator[ServiceProcess]:
    """One orchestrator calling the session's components directly (no Envoy, no Redis)."""
    service = start_orchestrator(log_dir, embedder_service, retriever_service, generator_service)
    yield service
    service.terminate()


@pytest.fixture
def stub(retriever_service: ServiceProcess) -> Iterator[Stub]:
    """A blocking stub of the session's retriever (modules testing another component, such
    as test_embedder and test_generator_real, define their own ``stub``)."""
    with retriever_stub(retriever_service.address) as client:
        yield client
