"""Start ragmesh services as real processes on loopback and wait until they serve.

Used by `ragmesh up`, the benchmarks and the integration tests alike.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ragmesh.vocabulary.tls import ClientTls

ROOT = Path(__file__).resolve().parents[2]  # the repository (services/ and gen/ live here)
#: How long a SIGTERM'd service may drain before it is killed (its own grace period is shorter).
STOP_TIMEOUT_SECONDS = 60.0


def file_tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a log file ("" when it does not exist yet)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_until(
    ready: Callable[[], bool],
    process: subprocess.Popen[bytes],
    *,
    name: str,
    condition: str,
    timeout: float,
    log_tail: Callable[[], str],
    interval: float,
) -> None:
    """Poll ``ready`` until it holds; RuntimeError with the log tail when process ``name``
    exits first, TimeoutError ("<name> <condition> after <timeout>s") when it never holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log_tail()}")
        if ready():
            return
        time.sleep(interval)
    raise TimeoutError(f"{name} {condition} after {timeout}s:\n{log_tail()}")


def tied_to_this_process(command: list[str]) -> list[str]:
    """``command`` wrapped so that it is terminated if this process dies (see child.py)."""
    return [sys.executable, str(Path(__file__).with_name("child.py")), str(os.getpid()), *command]


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM ``process``, wait up to ``timeout`` (then SIGKILL), return its exit code."""
    return stop_processes([process], timeout)[0]


def stop_processes(processes: Sequence[subprocess.Popen[bytes]], timeout: float) -> list[int]:
    """SIGTERM all of ``processes`` at once, wait up to ``timeout`` in all (SIGKILL the ones
    still running then), return their exit codes: they drain side by side, not in turn."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return [process.returncode for process in processes]


#: Where :func:`free_port` looks first: below Linux's default ephemeral range (32768-60999).
PRIVATE_PORTS = range(20000, 32768)


#: Ports free_port has handed out in this process: a port is bound by a process started later,
#: so a plan that asks for twenty ports before starting anything must not get one twice.
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now and that this process has not
    handed out before.

    Picked at random below the kernel's ephemeral range, not with ``bind(0)``: the port is
    bound by a process started later, and a port from the ephemeral range can be taken
    meanwhile as the local end of any outgoing connection (a test run makes thousands) or by
    another run's ``bind(0)``, which hands ports out in the same order. Without the memory of
    what was handed out, two calls before the first port is bound could return the same port
    (a mesh's retriever once failed on its metrics port, taken by another of its own ports).
    """
    low = _ephemeral_low()
    candidates = range(PRIVATE_PORTS.start, min(PRIVATE_PORTS.stop, low))
    for _ in range(100 if candidates else 0):
        port = random.choice(candidates)
        if port not in _HANDED_OUT and _bindable(port):
            _HANDED_OUT.add(port)
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    _HANDED_OUT.add(port)
    return port


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def service_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a service process: offline models, the repo on the path."""
    env = dict(os.environ)
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'gen'}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


def health_status(address: str, service: str = "", timeout: float = 2.0, tls: ClientTls | None = None) -> str:
    """The health status name of ``service`` at ``address`` (over TLS with ``tls``), or UNREACHABLE."""
    channel = (
        grpc.insecure_channel(address)
        if tls is None
        else grpc.secure_channel(address, tls.credentials(), options=tls.options())
    )
    with channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError:
            return "UNREACHABLE"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


class ServiceProcess:
    """One ``python -m services.<component>`` process with its log file."""

    def __init__(
        self, component: str, env: Mapping[str, str], log_dir: Path, probe_tls: ClientTls | None = None
    ) -> None:
        self.component = component
        #: How the readiness probe connects when the service serves (m)TLS.
        self.probe_tls = probe_tls
        self.log_path = log_dir / f"{component}-{time.monotonic_ns()}.log"
        prefix = f"RAGMESH_{component.upper()}_"
        self.port = int(env.get(prefix + "ADDR", "127.0.0.1:0").rpartition(":")[2] or 0) or free_port()
        self.metrics_port = int(env.get(prefix + "METRICS_PORT", 0)) or free_port()
        self.address = f"127.0.0.1:{self.port}"
        ports = {prefix + "ADDR": self.address, prefix + "METRICS_PORT": str(self.metrics_port)}
        #: The orchestrator's OpenAI-compatible HTTP port (0 for the other components).
        self.http_port = 0
        if component == "orchestrator":
            http = env.get(prefix + "HTTP_ADDR", "")
            if http.lower() != "off":  # "off": no HTTP API
                self.http_port = int(http.rpartition(":")[2] or 0) if http else free_port()
                ports[prefix + "HTTP_ADDR"] = http or f"127.0.0.1:{self.http_port}"
        full_env = service_env({**ports, **env})
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                tied_to_this_process([sys.executable, "-m", f"services.{component}"]),
                cwd=ROOT,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the process wrote."""
        return file_tail(self.log_path, lines)

    def wait_serving(self, timeout: float = 180.0) -> None:
        """Block until health reports SERVING; fail with the log tail otherwise."""
        wait_until(
            lambda: health_status(self.address, tls=self.probe_tls) == "SERVING",
            self.process,
            name=self.component,
            condition="not SERVING",
            timeout=timeout,
            log_tail=self.log_tail,
            interval=0.2,
        )

    def terminate(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM, wait for exit, return the exit code (kills after ``timeout``)."""
        return stop_process(self.process, timeout)
