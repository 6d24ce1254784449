"""``ragmesh up``: the whole mesh on one machine — every component as its own process on
loopback, Envoy in front (generated config), the orchestrator calling the components
through Envoy's internal listener (the public one serves the orchestrator only) — started,
checked and stopped as one. Optional: TLS/mTLS on the public listener, mTLS on every hop
behind Envoy (:mod:`ragmesh.mesh.mesh_tls`), API keys.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ragmesh.mesh import envoy
from ragmesh.mesh.addresses import MeshError, check_free, host_port, is_ip
from ragmesh.mesh.envoy_process import EnvoyProcess
from ragmesh.mesh.envoy_tls import write_sds
from ragmesh.mesh.plan import COMPONENT_ORDER, WORKER_PORTS, MeshPlan
from ragmesh.mesh.processes import (
    ROOT,
    STOP_TIMEOUT_SECONDS,
    ServiceProcess,
    free_port,
    service_env,
    stop_processes,
    tied_to_this_process,
)
from ragmesh.mesh.state import STATE_FILE, write_state
from ragmesh.vocabulary.names import DEFAULT_HTTP_PORT, DEFAULT_METRICS_PORTS, DEFAULT_PORTS


@dataclass
class Replica:
    """One started component process and its addresses."""

    component: str
    process: ServiceProcess
    #: The environment it was started with (a restart reuses it: same ports, same config).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return self.process.address

    def restart(self, log_dir: Path) -> None:
        """Start the same process again (after it exited)."""
        self.process = ServiceProcess(self.component, self.env, log_dir, self.process.probe_tls)


#: Orchestrator settings of the process, not of the core: the worker does not inherit them.
_PROCESS_SETTINGS = ("ADDR", "METRICS_", "HTTP_ADDR", "AUTH_", "API_KEYS", "TENANT_", "TLS_", "GRACE_", "DRAIN_")


def core_settings_for_worker(orchestrator_env: dict[str, str]) -> dict[str, str]:
    """The orchestrators' core settings (``RAGMESH_ORCHESTRATOR_CACHE_L1_ENTRIES`` ...) as
    the worker's (``RAGMESH_WORKER_CACHE_L1_ENTRIES`` ...)."""
    prefix = "RAGMESH_ORCHESTRATOR_"
    return {
        "RAGMESH_WORKER_" + name.removeprefix(prefix): value
        for name, value in orchestrator_env.items()
        if name.startswith(prefix) and not name.removeprefix(prefix).startswith(_PROCESS_SETTINGS)
    }


class Mesh:
    """A started mesh; ``stop()`` ends every process it started."""

    def __init__(self, plan: MeshPlan) -> None:
        plan.check()
        self.plan = plan
        self.replicas: list[Replica] = []
        self.envoy: EnvoyProcess | None = None
        #: The beat of source syncs (with a sources file and workers).
        self.beat: subprocess.Popen[bytes] | None = None
        self._http_ports: dict[int, int] = {}
        self.address = f"127.0.0.1:{plan.envoy_port}"
        self.internal_port = plan.envoy_internal_port or (8081 if plan.default_ports else free_port())
        self.internal_address = f"127.0.0.1:{self.internal_port}"

    def start(self, report: Callable[[str], None] = print, timeout: float = 600.0) -> None:
        """Start everything and wait until every replica is SERVING and healthy in Envoy."""
        ports = self._ports()
        self._http_ports = self._orchestrator_http_ports(ports)
        check_free(
            [(self.plan.envoy_port, "envoy"), (self.plan.envoy_admin_port, "envoy admin")]
            + [(port, "orchestrator HTTP API") for port in self._http_ports.values()]
            + [(self.internal_port, "envoy internal")]
            + [(port, name) for name, addresses in ports.items() for port, _ in addresses]
            + [(metrics, f"{name} metrics") for name, addresses in ports.items() for _, metrics in addresses]
            + ([(WORKER_PORTS[0], "worker"), (WORKER_PORTS[1], "worker metrics")] if self._default_worker_ports else [])
        )
        self.plan.log_dir.mkdir(parents=True, exist_ok=True)
        if self.plan.traces_file:  # its default (var/) is not under a --log-dir given elsewhere
            Path(self.plan.traces_file).parent.mkdir(parents=True, exist_ok=True)
        try:
            for component in COMPONENT_ORDER:
                for port, metrics in ports[component]:
                    self._spawn(component, self._env(component, port, metrics))
            self._start_envoy(ports)
            self._start_workers()
            for replica in self.replicas:
                report(f"waiting for {replica.component} on {replica.address} ...")
                self._wait(replica, timeout)
            assert self.envoy is not None
            for replica in self.replicas:
                if replica.component != "worker":  # workers take tasks from Redis, not calls
                    self.envoy.wait_health(replica.component, replica.address, healthy=True, timeout=60)
            self._write_state()
        except BaseException:
            self.stop()
            raise

    @property
    def _default_worker_ports(self) -> bool:
        return self.plan.worker_count > 0 and self.plan.default_ports

    def _ports(self) -> dict[str, list[tuple[int, int]]]:
        """(gRPC port, metrics port) of every replica."""
        ports: dict[str, list[tuple[int, int]]] = {}
        for component in COMPONENT_ORDER:
            addresses = []
            for index in range(self.plan.replicas[component]):
                first = index == 0 and self.plan.default_ports
                grpc_port = DEFAULT_PORTS[component] if first else free_port()
                metrics_port = DEFAULT_METRICS_PORTS[component] if first else free_port()
                addresses.append((grpc_port, metrics_port))
            ports[component] = addresses
        return ports

    def _orchestrator_http_ports(self, ports: dict[str, list[tuple[int, int]]]) -> dict[int, int]:
        """The HTTP API port of each orchestrator replica, by its gRPC port."""
        http: dict[int, int] = {}
        for index, (grpc_port, _) in enumerate(ports["orchestrator"]):
            http[grpc_port] = DEFAULT_HTTP_PORT if index == 0 and self.plan.default_ports else free_port()
        return http

    def _start_workers(self) -> None:
        """Start the workers: they call the embedder and retriever through Envoy."""
        for index in range(self.plan.worker_count):
            first = index == 0 and self.plan.default_ports
            port, metrics = WORKER_PORTS if first else (free_port(), free_port())
            env = self._env("worker", port, metrics)
            # The worker runs the orchestrator's core: it gets the orchestrators' core settings
            # under its own prefix (its own extra settings, applied after, still win).
            env = {**core_settings_for_worker(self.plan.env.get("orchestrator", {})), **env}
            for target in ("embedder", "retriever", "generator"):
                env[f"RAGMESH_WORKER_{target.upper()}_ADDR"] = self.internal_address
            env["RAGMESH_WORKER_COMPONENTS_BEHIND_ENVOY"] = "true"
            env["RAGMESH_WORKER_REDIS_URL"] = self.plan.redis_url
            self._spawn("worker", env)
        if self.plan.sources_file and self.plan.worker_count:
            self._start_beat(self.replicas[-1].env)

    def _start_beat(self, worker_env: dict[str, str]) -> None:
        """The schedule of source syncs: Celery beat (redbeat) with a worker's settings; it
        serves no health check, so it is started and stopped, not waited for."""
        log = self.plan.log_dir / f"beat-{time.monotonic_ns()}.log"
        with log.open("wb") as out:
            command = tied_to_this_process([sys.executable, "-m", "services.worker.beat"])
            self.beat = subprocess.Popen(
                command, cwd=ROOT, env=service_env(worker_env), stdout=out, stderr=subprocess.STDOUT
            )

    def _spawn(self, component: str, env: dict[str, str]) -> None:
        probe = self.plan.mesh_tls.probe() if self.plan.mesh_tls is not None else None
        self.replicas.append(Replica(component, ServiceProcess(component, env, self.plan.log_dir, probe), env))

    def _env(self, component: str, port: int, metrics: int) -> dict[str, str]:
        prefix = f"RAGMESH_{component.upper()}_"
        env = {prefix + "ADDR": f"127.0.0.1:{port}", prefix + "METRICS_PORT": str(metrics)}
        if component == "orchestrator":  # the orchestrator reaches everything through Envoy
            for target in ("embedder", "retriever", "generator"):
                env[f"{prefix}{target.upper()}_ADDR"] = self.internal_address
            if self.plan.api_key_file is not None:
                env[prefix + "AUTH_KEYS_FILE"] = str(self.plan.api_key_file)
            env[prefix + "COMPONENTS_BEHIND_ENVOY"] = "true"  # Envoy retries unary calls
            env[prefix + "HTTP_ADDR"] = f"127.0.0.1:{self._http_ports[port]}"
            if self.plan.redis_url:
                env[prefix + "REDIS_URL"] = self.plan.redis_url
        if self.plan.sources_file and component in ("orchestrator", "worker"):
            env[prefix + "SOURCES_FILE"] = self.plan.sources_file
        if component == "retriever":
            env[prefix + "URI"] = self.plan.retriever_uri
        if self.plan.traces_file:
            env["RAGMESH_TRACES_FILE"] = self.plan.traces_file
        if self.plan.otlp_endpoint:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = self.plan.otlp_endpoint
        if self.plan.mesh_tls is not None:
            env.update(self.plan.mesh_tls.env(component))
        env.update(self.plan.env.get(component, {}))
        return env

    def _start_envoy(self, ports: dict[str, list[tuple[int, int]]]) -> None:
        upstreams = [
            envoy.Upstream(
                component,
                tuple(("127.0.0.1", port) for port, _ in ports[component]),
                http_endpoints=tuple(("127.0.0.1", self._http_ports[port]) for port, _ in ports[component])
                if component == "orchestrator"
                else (),
            )
            for component in COMPONENT_ORDER
        ]
        collector = host_port(self.plan.otlp_endpoint) if self.plan.otlp_endpoint else None
        mesh_tls = self.plan.mesh_tls
        options = envoy.EnvoyOptions(
            listen_port=self.plan.envoy_port,
            admin_port=self.plan.envoy_admin_port,
            internal_port=self.internal_port,
            tls=self.plan.tls,
            internal_tls=mesh_tls.internal_listener() if mesh_tls is not None else None,
            upstream_tls=mesh_tls.upstreams() if mesh_tls is not None else None,
            descriptor_set=str(ROOT / "gen" / "ragmesh.pb"),
            otlp_endpoint=collector,  # Envoy adds its own span to every trace
            otlp_dns=collector is not None and not is_ip(collector.rpartition(":")[0]),
        )
        write_sds(options.tls, options.internal_tls, options.upstream_tls)
        config = envoy.write(self.plan.log_dir / "envoy.yaml", upstreams, options)
        self.envoy = EnvoyProcess(config, self.plan.log_dir / "envoy.log", self.plan.envoy_admin_port, cwd=ROOT)
        try:
            self.envoy.wait_ready()
        except (RuntimeError, TimeoutError) as error:
            raise MeshError(f"envoy failed to start:\n{error}") from None

    @staticmethod
    def _wait(replica: Replica, timeout: float) -> None:
        try:
            replica.process.wait_serving(timeout)
        except (RuntimeError, TimeoutError) as error:
            raise MeshError(
                f"{replica.component} failed to start (log: {replica.process.log_path}):\n{error}"
            ) from None

    def write_state(self) -> None:
        """Rewrite ``mesh.json`` (after a replica was restarted with a new pid)."""
        self._write_state()

    def _write_state(self) -> None:
        """``mesh.json`` in the log directory: every process with its pid, addresses and log,
        for operators and scripts (e.g. to stop one replica on purpose)."""
        state = {
            "address": self.address,
            "internal_address": self.internal_address,
            # What a caller of the internal listener presents (mTLS behind Envoy), e.g. `ragmesh eval`'s judge.
            "internal_tls": None if self.plan.mesh_tls is None else self.plan.mesh_tls.internal_client().files(),
            "envoy": {"pid": self.envoy.process.pid if self.envoy else None, "admin_port": self.plan.envoy_admin_port},
            "replicas": [
                {
                    "component": r.component,
                    "address": r.address,
                    "metrics_port": r.process.metrics_port,
                    "pid": r.process.process.pid,
                    "log": str(r.process.log_path),
                }
                for r in self.replicas
            ],
        }
        write_state(self.plan.log_dir, state)

    def stop(self) -> None:
        """SIGTERM every component (the orchestrators first, workers next, then the rest; the
        replicas of a tier drain side by side), then Envoy. Signals are ignored meanwhile: a
        second Ctrl-C must not abandon half-stopped processes."""
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            tier = {"orchestrator": 0, "worker": 1}
            for level in range(3):
                group = [r.process.process for r in self.replicas if tier.get(r.component, 2) == level]
                if level == 1 and self.beat is not None:
                    group.append(self.beat)
                stop_processes(group, STOP_TIMEOUT_SECONDS)
            if self.envoy is not None:
                self.envoy.stop()
            (self.plan.log_dir / STATE_FILE).unlink(missing_ok=True)  # nothing described is running
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def describe(self) -> list[str]:
        """Lines telling a person where everything is."""
        tls = "" if self.plan.tls is None else (" over mTLS" if self.plan.tls.mutual else " over TLS")
        auth = ", API key required" if self.plan.api_key_file is not None else ""
        lines = [
            f"clients: {self.address} (gRPC and HTTP/JSON{tls}{auth}), "
            f"envoy admin http://127.0.0.1:{self.plan.envoy_admin_port}",
            f"internal: {self.internal_address} (the components, for the orchestrator only"
            f"{'' if self.plan.mesh_tls is None else '; mTLS on every hop behind Envoy'})",
        ]
        for replica in self.replicas:
            metrics = replica.process.metrics_port
            lines.append(f"{replica.component:<12} {replica.address}  metrics http://127.0.0.1:{metrics}/metrics")
        traces = self.plan.traces_file or self.plan.otlp_endpoint or "not exported (use --traces-file or --otlp)"
        lines.append(f"traces: {traces}")
        lines.append(f"logs: {self.plan.log_dir} (processes: {self.plan.log_dir / 'mesh.json'})")
        return lines
