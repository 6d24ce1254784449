"""Fixtures of the integration tests that need the real components together."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragmesh.mesh.processes import ServiceProcess
from tests.support.mesh_cli import READY_LINE, UpProcess
from tests.support.redis_server import RedisServer
from tests.support.retriever import Stub, retriever_stub
from tests.support.secured_mesh import SecuredMesh, secured_mesh
from tests.support.stack import start_orchestrator
from tests.support.tenant_mesh import tenant_up


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


#: Short retry intervals: a job waits out a retriever restart in seconds, a SIGTERM'd worker
#: hands its task back at once (tests/integration/test_faults_mesh.py).
MESH_ENV = {
    "RAGMESH_WORKER_MAX_RETRIES": "60",
    "RAGMESH_WORKER_RETRY_BACKOFF_MAX_SECONDS": "1",
    "RAGMESH_WORKER_SOFT_SHUTDOWN_SECONDS": "2",
    "RAGMESH_WORKER_RESTORE_INTERVAL_SECONDS": "0.5",
}


@pytest.fixture(scope="session")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    """`ragmesh up --demo` with two replicas of every stateless component (one retriever:
    one milvus-lite file) and two workers on a private Redis, until the demo answered and
    the mesh waits; shared by the modules that use the whole mesh (the fault tests leave
    it whole), stopped with Ctrl-C at the end of the session."""
    work = tmp_path_factory.mktemp("mesh")
    redis = RedisServer(work)
    redis.start()
    replicas = ["--orchestrators", "2", "--embedders", "2", "--generators", "2", "--workers", "2"]
    up = UpProcess.start(work, *replicas, "--redis-url", redis.url, "--demo", env=MESH_ENV)
    try:
        up.wait_for(READY_LINE, timeout=900)
        yield up
    finally:
        code = up.stop()
        redis.stop()
        assert code == 0, "\n".join(up.lines[-40:])


@pytest.fixture(scope="session")
def secure_mesh(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[SecuredMesh]:
    """TLS at Envoy, an API key, mTLS on every hop behind it (tests/support/secured_mesh.py):
    shared by the modules that call a secured mesh (mTLS hops, eval over TLS, the Node client)."""
    with secured_mesh(tmp_path_factory.mktemp("secured-mesh"), tiny_model_dir) as mesh:
        yield mesh


@pytest.fixture(scope="session")
def tenant_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    """`ragmesh up` with API keys on (tests/support/tenant_mesh.py), shared by the MCP and
    console modules."""
    with tenant_up(tmp_path_factory.mktemp("tenant-mesh")) as up:
        yield up


@pytest.fixture
def stub(retriever_service: ServiceProcess) -> Iterator[Stub]:
    """A blocking stub of the session's retriever (modules testing another component, such
    as test_embedder and test_generator_real, define their own ``stub``)."""
    with retriever_stub(retriever_service.address) as client:
        yield client
