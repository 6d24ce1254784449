"""``ragmesh up`` run as a subprocess, as a person would, with its output parsed."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ragmesh.mesh.processes import ROOT, free_port, service_env

READY_LINE = "Ctrl-C stops the mesh."
_INTERNAL_LINE = re.compile(r"^\s+internal: (127\.0\.0\.1:\d+) ")
_REPLICA_LINE = re.compile(r"^\s+(\w+)\s+(127\.0\.0\.1:\d+)\s+metrics http://127\.0\.0\.1:(\d+)/metrics")


def run_cli(*args: str, timeout: float = 300.0, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``ragmesh ARGS`` as a subprocess; returns its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "ragmesh.cli", *args],
        cwd=ROOT,
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        check=False,
    )


@dataclass
class UpProcess:
    """A running ``ragmesh up`` and what it printed."""

    process: subprocess.Popen[str]
    port: int
    admin_port: int
    traces_file: Path
    log_dir: Path
    lines: list[str] = field(default_factory=list)
    replicas: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    #: Envoy's internal listener (the components), from the "internal:" line.
    internal_address: str = ""
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start(cls, workdir: Path, *extra: str, env: Mapping[str, str] | None = None) -> UpProcess:
        """Start ``ragmesh up`` on free ports with its data, logs and spans in ``workdir``;
        ``env`` is added to the environment (the replicas inherit it)."""
        port, admin_port = free_port(), free_port()
        traces, logs = workdir / "traces.jsonl", workdir / "logs"
        args = ["up", "--random-ports", "--port", str(port), "--admin-port", str(admin_port)]
        args += ["--retriever-uri", str(workdir / "milvus" / "ragmesh.db"), "--traces-file", str(traces)]
        args += ["--log-dir", str(logs), *extra]
        # Started the way nohup or `cmd &` in a script start it, with Ctrl-C ignored (the shell's
        # `trap "" INT` is inherited through exec): every stop() at the end of a test then checks
        # that Ctrl-C still stops the mesh with exit 0.
        process = subprocess.Popen(
            ["sh", "-c", 'trap "" INT; exec "$@"', "sh", sys.executable, "-m", "ragmesh.cli", *args],
            cwd=ROOT,
            env=service_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        up = cls(process, port, admin_port, traces, logs)
        threading.Thread(target=up._pump, daemon=True).start()
        return up

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float) -> None:
        """Read output until a line contains ``text``; fail with the output otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=1.0)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"ragmesh up exited with {self.process.wait()}:\n" + "\n".join(self.lines[-60:]))
            self.lines.append(line)
            if match := _INTERNAL_LINE.match(line):
                self.internal_address = match[1]
            if match := _REPLICA_LINE.match(line):
                self.replicas.setdefault(match[1], []).append((match[2], int(match[3])))
            if text in line:
                return
        raise TimeoutError(f"no {text!r} from ragmesh up in {timeout}s:\n" + "\n".join(self.lines[-60:]))

    def stop(self, timeout: float = 120.0) -> int:
        """Ctrl-C, wait for a clean exit, return its code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        while self._queue.qsize():
            line = self._queue.get()
            if line is not None:
                self.lines.append(line)
        return self.process.returncode
