"""Orchestrator processes wired to the session's embedder, retriever and generator, and a
small helper to talk to them."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

from ragmesh.client import RagmeshClient
from ragmesh.mesh.processes import ServiceProcess


def start_orchestrator(
    log_dir: Path,
    embedder: ServiceProcess,
    retriever: ServiceProcess,
    generator: ServiceProcess,
    extra: Mapping[str, str] | None = None,
) -> ServiceProcess:
    """An orchestrator calling the given components directly (no Envoy), SERVING."""
    env = {
        "RAGMESH_ORCHESTRATOR_EMBEDDER_ADDR": embedder.address,
        "RAGMESH_ORCHESTRATOR_RETRIEVER_ADDR": retriever.address,
        "RAGMESH_ORCHESTRATOR_GENERATOR_ADDR": generator.address,
        "RAGMESH_ORCHESTRATOR_DRAIN_SECONDS": "0",
        **(extra or {}),
    }
    service = ServiceProcess("orchestrator", env, log_dir)
    try:
        service.wait_serving(timeout=120)
    except BaseException:
        service.terminate()
        raise
    return service


@contextlib.contextmanager
def orchestrator_replicas(
    log_dir: Path,
    components: tuple[ServiceProcess, ServiceProcess, ServiceProcess],
    extra: Mapping[str, str] | None = None,
    *,
    count: int = 2,
) -> Iterator[list[ServiceProcess]]:
    """``count`` orchestrators on (embedder, retriever, generator), started one after the
    other; every one started is terminated on the way out, also when a later one fails to
    start or the body raises."""
    started: list[ServiceProcess] = []
    with contextlib.ExitStack() as stack:  # unwinds every callback even if one of them raises
        for _ in range(count):
            replica = start_orchestrator(log_dir, *components, extra)
            stack.callback(replica.terminate)
            started.append(replica)
        yield started


def unique_collection() -> str:
    """A collection name no other test uses."""
    return f"t_{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def client_of(service: ServiceProcess, **settings: object) -> Iterator[RagmeshClient]:
    """A blocking client talking to ``service`` directly."""
    with RagmeshClient(service.address, **settings) as client:
        yield client


def start_worker(
    log_dir: Path,
    embedder: str,
    retriever: str,
    redis_url: str,
    extra: Mapping[str, str] | None = None,
) -> ServiceProcess:
    """A worker (``python -m services.worker``) on ``redis_url`` calling the embedder and
    retriever at these addresses, SERVING: connected to the broker, both answering. Short
    visibility timeout and intervals."""
    env = {
        "RAGMESH_WORKER_REDIS_URL": redis_url,
        "RAGMESH_WORKER_EMBEDDER_ADDR": embedder,
        "RAGMESH_WORKER_RETRIEVER_ADDR": retriever,
        "RAGMESH_WORKER_GENERATOR_ADDR": "127.0.0.1:1",  # batches in the tests are retrieval-only
        "RAGMESH_WORKER_VISIBILITY_TIMEOUT_SECONDS": "2",
        "RAGMESH_WORKER_RESTORE_INTERVAL_SECONDS": "0.5",
        "RAGMESH_WORKER_HEALTH_INTERVAL_SECONDS": "0.2",
        "RAGMESH_WORKER_REDIS_TIMEOUT_SECONDS": "1",
        "RAGMESH_WORKER_DRAIN_SECONDS": "0",
        **(extra or {}),
    }
    service = ServiceProcess("worker", env, log_dir)
    try:
        service.wait_serving(timeout=120)
    except BaseException:
        service.terminate()
        raise
    return service
