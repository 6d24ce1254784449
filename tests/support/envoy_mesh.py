"""A real Envoy (generated config) in front of fake replicas running in the test's loop.

As in ``ragmesh up``, the public listener (``address``) routes the orchestrator only
(unless ``public_components`` says otherwise) and the internal one (``internal_address``)
every component; ``tls`` puts TLS or mTLS on the public listener. ``behind`` puts mTLS on
every hop behind Envoy: the replicas serve TLS, Envoy originates it, and the internal
listener requires a client certificate.

Envoy's log and access log go to a file whose tail is printed when the harness closes,
so a failing test shows it. Every Envoy started here is stopped when the block exits.
Blocking waits run in a thread: the fake replicas answer Envoy's health checks from the
test's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ragmesh.mesh import envoy
from ragmesh.mesh.envoy_process import EnvoyProcess
from ragmesh.mesh.envoy_tls import write_sds
from ragmesh.mesh.processes import ROOT, free_port
from services.common.tls import ServerTls
from tests.support.fakes import FakeReplica, start_replica

DESCRIPTOR_SET = ROOT / "gen" / "ragmesh.pb"


@dataclass
class Mesh:
    """The running Envoy and the replicas behind it, by component."""

    envoy: EnvoyProcess
    port: int
    replicas: dict[str, list[FakeReplica]]
    internal_port: int = 0
    #: The orchestrator's HTTP API port behind Envoy (0: none).
    http_port: int = 0

    @property
    def address(self) -> str:
        """Envoy's public listener (the orchestrator only)."""
        return f"127.0.0.1:{self.port}"

    @property
    def internal_address(self) -> str:
        """Envoy's internal listener (every component)."""
        return f"127.0.0.1:{self.internal_port}"

    async def wait_health(self, replica: FakeReplica, healthy: bool) -> None:
        """Wait until Envoy's health checks see ``replica`` as healthy (or not)."""
        await asyncio.to_thread(self.envoy.wait_health, replica.component, replica.address, healthy)


@dataclass(frozen=True)
class BehindEnvoyTls:
    """mTLS behind Envoy: what the replicas serve, what Envoy presents and checks."""

    replicas: ServerTls
    upstreams: envoy.UpstreamTlsOptions
    internal: envoy.TlsOptions


def _upstreams(started: Mapping[str, list[FakeReplica]], http_port: int | None) -> list[envoy.Upstream]:
    return [
        envoy.Upstream(
            c, tuple(("127.0.0.1", r.port) for r in group), http_port=http_port if c == "orchestrator" else None
        )
        for c, group in started.items()
    ]


def _options(
    port: int,
    admin_port: int,
    internal_port: int,
    *,
    otlp_endpoint: str | None,
    tls: envoy.TlsOptions | None,
    public_components: tuple[str, ...],
    behind: BehindEnvoyTls | None,
) -> envoy.EnvoyOptions:
    return envoy.EnvoyOptions(
        listen_port=port,
        admin_port=admin_port,
        descriptor_set=str(DESCRIPTOR_SET),
        otlp_endpoint=otlp_endpoint,
        health_check_interval_s=0.5,
        internal_port=internal_port,
        public_components=public_components,
        tls=tls,
        internal_tls=behind.internal if behind else None,
        upstream_tls=behind.upstreams if behind else None,
    )


@contextlib.asynccontextmanager
async def running_mesh(
    work_dir: Path,
    replicas: Mapping[str, int],
    stream_interval: float = 1.0,
    otlp_endpoint: str | None = None,
    *,
    tls: envoy.TlsOptions | None = None,
    public_components: tuple[str, ...] = ("orchestrator",),
    http_port: int | None = None,
    behind: BehindEnvoyTls | None = None,
) -> AsyncIterator[Mesh]:
    """Start ``replicas`` (component -> count) and an Envoy in front of them; ``http_port``
    is the orchestrator's HTTP API on loopback (Envoy routes ``/v1/`` there)."""
    started: dict[str, list[FakeReplica]] = {}
    process: EnvoyProcess | None = None
    try:
        for component, count in replicas.items():
            started[component] = [
                await start_replica(
                    component, f"{component}-{index}", stream_interval, behind.replicas if behind else None
                )
                for index in range(count)
            ]
        port, admin_port, internal_port = free_port(), free_port(), free_port()
        upstreams = _upstreams(started, http_port)
        options = _options(
            port, admin_port, internal_port, otlp_endpoint=otlp_endpoint, tls=tls, public_components=public_components,
            behind=behind,
        )  # fmt: skip
        write_sds(options.tls, options.internal_tls, options.upstream_tls)
        config = envoy.write(work_dir / "envoy.yaml", upstreams, options)
        process = EnvoyProcess(config, work_dir / "envoy.log", admin_port)
        mesh = Mesh(process, port, started, internal_port, http_port or 0)
        await asyncio.to_thread(process.wait_ready)
        for group in started.values():
            for replica in group:
                await mesh.wait_health(replica, healthy=True)
        yield mesh
    finally:
        if process is not None:
            process.stop()
            print(f"--- envoy log ({process.log_path}) ---\n{process.log_tail()}")
        for group in started.values():
            for replica in group:
                await replica.stop()
