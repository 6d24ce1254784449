"""The generation half of bench.peers: the same chat completion (bench.generator's prompt,
128 greedy tokens, the default GGUF) through

- llama.cpp in this process (``Llama.create_chat_completion``, bench.generator_llamacpp's
  baseline): the in-process baseline;
- ragmesh's generator service with the llamacpp backend, streamed over gRPC on loopback;
- llama-cpp-python's own OpenAI-compatible server (``python -m llama_cpp.server``, what a
  user who wants llama.cpp behind HTTP would run), non-streamed over HTTP on loopback.

Each round times ``calls`` completions one after another per system; rounds alternate the
systems, and only the system being measured runs (bench.peers_servers.Freezer). Throughput
is tokens per second over the round, latency one whole completion.
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.generator_llamacpp import inprocess_rate
from bench.generator_stream import NEW_TOKENS, PROMPT, llamacpp_threads, service_rate
from bench.peers_report import Sample
from bench.peers_servers import Freezer, with_cpu
from ragmesh.mesh.processes import (
    ROOT,
    ServiceProcess,
    file_tail,
    free_port,
    stop_process,
    tied_to_this_process,
    wait_until,
)
from services.generator.config import default_model_path

RAGMESH, LLAMA_SERVER = "ragmesh generator (llamacpp backend)", "llama-cpp-python server"
SYSTEMS = {RAGMESH: "gRPC stream on loopback, 1 stream", LLAMA_SERVER: "OpenAI HTTP on loopback, not streamed"}


def _timed(call: Callable[[], float]) -> tuple[float, float]:
    """(tokens, seconds) of one completion whose ``call()`` returns its tokens per second."""
    start = time.perf_counter()
    rate = float(call())
    seconds = time.perf_counter() - start
    return rate * seconds, seconds


def _server_completion(url: str) -> float:
    """Tokens per second of one completion from llama-cpp-python's server."""
    start = time.perf_counter()
    response = httpx.post(
        url,
        json={"messages": [{"role": "user", "content": PROMPT}], "max_tokens": NEW_TOKENS, "temperature": 0.0,
              "repeat_penalty": 1.0},
        timeout=300,
    )  # fmt: skip
    response.raise_for_status()
    return float(response.json()["usage"]["completion_tokens"]) / (time.perf_counter() - start)


def _llama_server(model: str, threads: int, log_dir: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log_path = log_dir / "llama-cpp-server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", "2048", "--n_threads", str(threads),
               "--n_threads_batch", str(threads)]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(tied_to_this_process(command), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}/v1/chat/completions", log_path


def _models_up(url: str) -> bool:
    try:
        return httpx.get(url.replace("/chat/completions", "/models"), timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _round(call: Callable[[], float], calls: int) -> Sample:
    """``calls`` completions one after another: tokens/s over all, seconds of each."""
    runs = [_timed(call) for _ in range(calls)]
    tokens = sum(t for t, _ in runs)
    return Sample(tokens / sum(s for _, s in runs), [s for _, s in runs], items=tokens)


def measure(rounds: int, calls: int, log_dir: Path) -> tuple[dict[str, list[Sample]], dict[str, list[Sample]], int]:
    """(baselines per system, samples per system, threads) of the generation half; each sample
    has its own baseline, measured just before it."""
    from llama_cpp import Llama

    threads = llamacpp_threads()
    model = default_model_path("model")
    llm = Llama(model, n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
    env = {"RAGMESH_GENERATOR_BACKEND": "llamacpp", "RAGMESH_GENERATOR_LLAMACPP_THREADS": str(threads)}
    service = ServiceProcess("generator", env, log_dir)
    server, url, server_log = _llama_server(model, threads, log_dir)
    baselines: dict[str, list[Sample]] = {name: [] for name in SYSTEMS}
    samples: dict[str, list[Sample]] = {name: [] for name in SYSTEMS}
    try:
        service.wait_serving(timeout=600)
        wait_until(lambda: _models_up(url), server, name="llama_cpp.server", condition="not up", timeout=600,
                   log_tail=lambda: file_tail(server_log, 40), interval=1.0)  # fmt: skip
        systems: dict[str, Callable[[], float]] = {
            RAGMESH: lambda: asyncio.run(service_rate(service.address, 1))[0],
            LLAMA_SERVER: lambda: _server_completion(url),
        }
        baseline: Callable[[], float] = lambda: inprocess_rate(llm)  # noqa: E731
        for call in (baseline, *systems.values()):  # warm-up of every side
            call()
        freezer = Freezer({RAGMESH: lambda: [service.process.pid], LLAMA_SERVER: lambda: [server.pid]})
        for number in range(1, rounds + 1):
            for name, call in systems.items():
                freezer.only(None)
                baselines[name].append(with_cpu(functools.partial(_round, baseline, calls), None))
                freezer.only(name)
                samples[name].append(with_cpu(functools.partial(_round, call, calls), freezer.members[name]))
            freezer.thaw_all()
            print(f"generation round {number}: " + ", ".join(
                f"{name} {s[-1].throughput:.1f} (in-process {baselines[name][-1].throughput:.1f}) tokens/s"
                for name, s in samples.items()), flush=True)  # fmt: skip
    finally:
        Freezer({"all": lambda: [service.process.pid, server.pid]}).thaw_all()
        service.terminate()
        stop_process(server, 30)
    return baselines, samples, threads
