"""A private Redis server for a test (on a free port, nothing on disk), so a test can stop
it mid-way without disturbing anything else."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from ragmesh.mesh.processes import free_port, stop_process, tied_to_this_process


class RedisServer:
    """``redis-server`` on 127.0.0.1 at a free port; ``stop()`` and ``start()`` at will."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; the tests need it (apt install redis-server)")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server (ended with this process, should it die) and wait until it
        answers PING; a server that never answers is stopped before the error is raised."""
        self.process = subprocess.Popen(
            tied_to_this_process(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.workdir),
                ]
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait_for_ping(self.process)
        except BaseException:
            self.stop()
            raise

    def _wait_for_ping(self, process: subprocess.Popen[bytes]) -> None:
        """Poll PING a bounded number of times; RuntimeError if it never answers."""
        with redis.Redis.from_url(self.url) as client:
            for _ in range(200):
                if process.poll() is not None:
                    raise RuntimeError(f"redis-server on port {self.port} exited with {process.returncode}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    time.sleep(0.025)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        """Stop the server (its data is gone)."""
        if self.process is not None:
            stop_process(self.process, 10)
        self.process = None
