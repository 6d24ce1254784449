"""What ``ragmesh up`` starts: replica counts, ports, store, broker, TLS, keys, tracing and
logs — checked before anything starts, so a plan that cannot work says why."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ragmesh.mesh.addresses import MeshError
from ragmesh.mesh.envoy_tls import TlsOptions
from ragmesh.mesh.mesh_tls import MeshTls
from ragmesh.mesh.processes import ROOT
from ragmesh.vocabulary.names import DEFAULT_METRICS_PORTS, DEFAULT_PORTS

COMPONENT_ORDER = ("retriever", "embedder", "generator", "orchestrator")
#: Ports of the first worker (health, metrics); workers sit behind no Envoy cluster.
WORKER_PORTS = (DEFAULT_PORTS["worker"], DEFAULT_METRICS_PORTS["worker"])


@dataclass(frozen=True)
class MeshPlan:
    """What to start: replica counts, ports, store, cache, tracing, logs."""

    replicas: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COMPONENT_ORDER, 1))
    envoy_port: int = 8080
    envoy_admin_port: int = 9901
    #: Envoy's internal listener (loopback): the orchestrator reaches the components there.
    #: Envoy's internal listener (the components); None: 8081 with default ports, else a free one.
    envoy_internal_port: int | None = None
    #: TLS (mTLS when it has a client CA) on Envoy's public listener.
    tls: TlsOptions | None = None
    #: mTLS on every hop behind Envoy (replicas, internal listener); None: cleartext on loopback.
    mesh_tls: MeshTls | None = None
    #: Key file of the orchestrators (RAGMESH_ORCHESTRATOR_AUTH_KEYS_FILE): auth on.
    api_key_file: Path | None = None
    #: The first replica of each component gets its default port; extra ones get free ports.
    default_ports: bool = True
    retriever_uri: str = str(ROOT / "var" / "milvus" / "ragmesh.db")
    redis_url: str = ""
    traces_file: str = ""
    otlp_endpoint: str = ""
    log_dir: Path = ROOT / "var" / "logs"
    #: Extra environment per component (e.g. generator settings), merged over the defaults.
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Worker processes (background jobs and batches); None: 1 with a Redis URL, else 0.
    workers: int | None = None
    #: The sources file (docs/sources.md) of the orchestrators, workers and the beat ("" = none).
    sources_file: str = ""

    @property
    def worker_count(self) -> int:
        """How many workers to start."""
        return (1 if self.redis_url else 0) if self.workers is None else self.workers

    def check(self) -> None:
        """Reject plans that cannot work, with a reason."""
        for component, count in self.replicas.items():
            if not 1 <= count <= 16:
                raise MeshError(f"{component} replicas must be between 1 and 16, got {count}")
        if self.replicas["retriever"] > 1 and not self.retriever_uri.startswith(("http://", "https://")):
            raise MeshError(
                "several retrievers need a Milvus server (--retriever-uri http://host:19530): "
                "a milvus-lite directory is owned by one process"
            )
        if not 0 <= self.worker_count <= 16:
            raise MeshError(f"workers must be between 0 and 16, got {self.worker_count}")
        if self.worker_count and not self.redis_url:
            raise MeshError("workers need a broker: give --redis-url (e.g. redis://127.0.0.1:6379/0)")
        if self.sources_file and not self.worker_count:
            raise MeshError("sources are synced by workers: give --redis-url (and --workers 1 or more)")
