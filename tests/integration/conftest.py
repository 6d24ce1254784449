"""Fixtures of the integration tests that need the real components together."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragmesh.mesh.processes import ServiceProcess
from tests.support.mesh_cli import READY_LINE, UpProcess
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


@pytest.fixture(scope="session")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    """`ragmesh up --demo --embedders 2`, until the demo answered and the mesh waits; shared
    by the modules that use the whole mesh, stopped with Ctrl-C at the end of the session."""
    up = UpProcess.start(tmp_path_factory.mktemp("mesh"), "--embedders", "2", "--demo")
    try:
        up.wait_for(READY_LINE, timeout=900)
        yield up
    finally:
        code = up.stop()
        assert code == 0, "\n".join(up.lines[-40:])


@pytest.fixture
def stub(retriever_service: ServiceProcess) -> Iterator[Stub]:
    """A blocking stub of the session's retriever (modules testing another component, such
    as test_embedder and test_generator_real, define their own ``stub``)."""
    with retriever_stub(retriever_service.address) as client:
        yield client
