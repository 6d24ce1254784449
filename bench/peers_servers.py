"""The peers as servers on loopback, and the HTTP side of the embedding load.

Each peer runs from the peers venv (bench/peers-requirements.txt) in a session of its own,
tied to this process (it gets SIGTERM when this process dies), bounded by a readiness
timeout, and stopped with its whole process group. The load is bench.embedder's: ``callers``
concurrent clients, one text per call, each walking its own slice of the texts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from bench.peers_report import Sample
from ragmesh.mesh.processes import ROOT, file_tail, free_port, tied_to_this_process, wait_until

MINILM_DIMENSION = 384
#: Telemetry of the peers off (there is no network here anyway), models offline.
PEER_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "INFINITY_ANONYMOUS_USAGE_STATS": "0",
    "DO_NOT_TRACK": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "PYTHONUNBUFFERED": "1",
}


class PeerServer:
    """One peer process (and whatever it starts) with its log file."""

    def __init__(
        self, name: str, command: list[str], log_dir: Path, port: int, path: str, *,
        env: dict[str, str] | None = None, probe: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}{path}"
        #: The request that must succeed before the peer counts as ready (an embedding by default).
        self.probe = probe if probe is not None else body("ready?")
        self.log_path = log_dir / f"{name}.log"
        inherited = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                tied_to_this_process(command),
                cwd=ROOT,
                env={**inherited, **PEER_ENV, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a session of its own: stop() finds all it started by it
            )

    def pids(self) -> list[int]:
        """Every live process of this peer (its session)."""
        return session_members(self.process.pid)

    def wait_ready(self, timeout: float) -> None:
        """Block until the probe request succeeds; fail with the log tail otherwise."""
        wait_until(
            lambda: _answers(self.url, self.probe),
            self.process,
            name=self.name,
            condition=f"did not answer {self.probe}",
            timeout=timeout,
            log_tail=lambda: file_tail(self.log_path, 40),
            interval=1.0,
        )

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM the peer, wait up to ``timeout``, then SIGKILL whatever of its session is left
        (Ray puts its workers in process groups of their own, but they stay in our session)."""
        _signal_all(self.pids(), signal.SIGCONT)  # in case a Freezer left it stopped
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        deadline = time.monotonic() + 15
        while (left := session_members(self.process.pid)) and time.monotonic() < deadline:
            time.sleep(0.5)  # Ray's raylet and agents exit shortly after the driver
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class Freezer:
    """Only the system being measured runs: every other server is stopped with SIGSTOP
    (whole sessions for the peers) and continued before its own turn. An idle server is not
    always idle (infinity-emb's batch loop polls, Ray has its agents), and on two cores any
    of that would be taken from whichever system is being measured."""

    def __init__(self, members: dict[str, Callable[[], list[int]]]) -> None:
        self.members = members

    def only(self, name: str | None) -> None:
        """Freeze every server but ``name`` (all of them when None); continue ``name``."""
        for other, pids in self.members.items():
            if other != name:
                _signal_all(pids(), signal.SIGSTOP)
        if name is not None:
            _signal_all(self.members[name](), signal.SIGCONT)
            time.sleep(0.5)  # let its timers and health checks catch up before the load starts

    def thaw_all(self) -> None:
        """Continue every server (before stopping them: a stopped process ignores SIGTERM)."""
        for pids in self.members.values():
            _signal_all(pids(), signal.SIGCONT)


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the live processes ``pids`` have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:  # it exited
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def with_cpu(measure: Callable[[], Sample], server: Callable[[], list[int]] | None) -> Sample:
    """``measure()`` with the CPU this process and the ``server`` processes spent in it
    (warm-up calls included; a server process that exits meanwhile is not counted)."""
    pids = server() if server else []
    client, served = time.process_time(), cpu_seconds(pids)
    sample = measure()
    server_cpu = cpu_seconds(pids) - served if server else None
    return replace(sample, client_cpu_s=time.process_time() - client, server_cpu_s=server_cpu)


def session_members(sid: int) -> list[int]:
    """The live processes of session ``sid`` (the session a peer was started in)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # it exited while we looked
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _answers(url: str, probe: dict[str, Any]) -> bool:
    try:
        response = httpx.post(url, json=probe, timeout=120)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def body(text: str) -> dict[str, Any]:
    """The OpenAI-style embeddings body both peers accept (the model name is infinity's)."""
    return {"model": "minilm", "input": [text]}


def infinity(peers_bin: Path, model: str, log_dir: Path, batch: int) -> PeerServer:
    """infinity-emb's server (``infinity_emb v2``) on the model directory, torch on CPU."""
    port = free_port()
    command = [
        str(peers_bin / "infinity_emb"), "v2", "--model-id", model, "--served-model-name", "minilm",
        "--engine", "torch", "--device", "cpu", "--batch-size", str(batch), "--no-bettertransformer",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    return PeerServer("infinity-emb", command, log_dir, port, "/embeddings")


def ray_serve(peers_bin: Path, model: str, log_dir: Path, batch: int, threads: int) -> PeerServer:
    """Ray Serve with a ``@serve.batch`` deployment (bench/peers_ray_app.py), local-only Ray."""
    port = free_port()
    command = [
        str(peers_bin / "python"), str(Path(__file__).with_name("peers_ray_app.py")), "--model", model,
        "--port", str(port), "--threads", str(threads), "--max-batch", str(batch), "--max-seconds", "5400",
    ]  # fmt: skip
    return PeerServer("ray-serve", command, log_dir, port, "/")


async def http_load(url: str, texts: list[str], callers: int, make_body: Callable[[str], Any] = body) -> Sample:
    """Texts per second and per-call latencies with ``callers`` concurrent single-text clients."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=callers, max_keepalive_connections=callers)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def call(text: str) -> None:
            response = await client.post(url, json=make_body(text))
            response.raise_for_status()
            vectors = response.json()["data"]
            if len(vectors) != 1 or len(vectors[0]["embedding"]) != MINILM_DIMENSION:
                raise RuntimeError(f"{url} answered {len(vectors)} vectors, not one of {MINILM_DIMENSION}")

        await asyncio.gather(*(call(t) for t in texts[:callers]))  # warm-up: every connection opened

        async def caller(offset: int) -> None:
            for text in texts[offset::callers]:
                began = time.perf_counter()
                await call(text)
                latencies.append(time.perf_counter() - began)

        start = time.perf_counter()
        await asyncio.gather(*(caller(i) for i in range(callers)))
        elapsed = time.perf_counter() - start
    return Sample(len(texts) / elapsed, latencies, items=len(texts))
