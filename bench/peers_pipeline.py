"""The whole pipeline of bench.peers beside Haystack: the sample corpus's questions answered by
ragmesh's default mesh through Envoy (streamed over gRPC, cache bypassed) and by a Haystack
RAG pipeline served by Hayhooks (bench/peers_haystack, from the Haystack venv: the same
embedding model, the same GGUF through llama-cpp-haystack, the same corpus, answer length
and top 4 passages), at 1 and at 8 concurrent callers.

Rounds alternate which system goes first; each figure is the median round. The idle system
is left running, not SIGSTOPped as in the embedding half: an idle mesh's Envoy health checks
cost next to nothing, and a stopped Envoy would mark the mesh's replicas unhealthy when continued.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.e2e import questions
from bench.generator_stream import llamacpp_threads
from bench.peers_servers import PeerServer
from bench.sweep import COLLECTION, CORPUS, start_mesh
from bench.sweep_load import Finished, LevelResult, Streamer, mesh_streamer, run_level
from ragmesh.client import AsyncRagmeshClient
from ragmesh.mesh.launcher import Mesh
from ragmesh.mesh.processes import ROOT, free_port
from services.embedder.config import EmbedderConfig
from services.generator.config import default_model_path
from services.orchestrator.core.query.prompt import SYSTEM_PROMPT

RAGMESH, HAYSTACK = "ragmesh (mesh through Envoy)", "Haystack + Hayhooks"
HOW = {
    RAGMESH: "gRPC stream through Envoy; default settings (llama.cpp, context budget), cache bypassed",
    HAYSTACK: "HTTP POST /rag/run; in-memory store, whole passages, llama-cpp-haystack (generation serialized)",
}
LEVELS = (1, 8)
TOP_K = 4


@dataclass(frozen=True)
class LevelFigures:
    """One system at one concurrency, its median round."""

    qps: float
    p50_ms: float
    p95_ms: float
    prompt_tokens_p50: float
    errors: int


def figures(rounds: list[LevelResult]) -> LevelFigures:
    """The median round by queries/s (its latencies with it); errors over all rounds."""
    if not rounds:
        raise ValueError("no rounds measured")
    summaries = sorted((r.summary() for r in rounds), key=lambda s: s["qps"])
    median = summaries[len(summaries) // 2]
    return LevelFigures(
        qps=median["qps"], p50_ms=median["e2e_p50_ms"], p95_ms=median["e2e_p95_ms"],
        prompt_tokens_p50=median["prompt_tokens_p50"], errors=sum(int(s["errors"]) for s in summaries),
    )  # fmt: skip


def comparison(results: dict[str, dict[int, LevelFigures]]) -> dict[str, float]:
    """The report's pipeline keys: ragmesh / Haystack queries/s at c=8, p50 at c=1 (lower is better)."""
    ours, theirs = results[RAGMESH], results[HAYSTACK]
    return {
        "pipeline_qps_vs_haystack_c8": round(ours[8].qps / theirs[8].qps, 3) if theirs[8].qps else 0.0,
        "pipeline_p50_vs_haystack_c1": round(ours[1].p50_ms / theirs[1].p50_ms, 3) if theirs[1].p50_ms else 0.0,
    }


def table(results: dict[str, dict[int, LevelFigures]]) -> list[str]:
    """The Markdown rows of the pipeline section."""
    lines = [
        "| system | how it is reached | concurrency | queries/s | p50 (ms) | p95 (ms) | prompt tokens (p50) | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for system, levels in results.items():
        for level, f in sorted(levels.items()):
            lines.append(
                f"| {system} | {HOW.get(system, '')} | {level} | {f.qps:.3f} | {f.p50_ms:.0f} | {f.p95_ms:.0f} "
                f"| {f.prompt_tokens_p50:.0f} | {f.errors} |"
            )
    return lines


def haystack_streamer(client: httpx.AsyncClient, url: str) -> Streamer:
    """Hayhooks answers whole: the answer as one piece, then its prompt's token count."""

    async def stream(question: str) -> AsyncIterator[str | Finished]:
        response = await client.post(url, json={"question": question})
        response.raise_for_status()
        result = response.json()["result"]
        yield str(result["answer"])
        yield Finished(int(result["prompt_tokens"]))

    return stream


def hayhooks(venv: Path, log_dir: Path, tokens: int) -> PeerServer:
    """Hayhooks serving bench/peers_haystack's ``rag`` pipeline from the Haystack venv."""
    port = free_port()
    command = [str(venv / "bin" / "hayhooks"), "run", "--host", "127.0.0.1", "--port", str(port),
               "--pipelines-dir", str(ROOT / "bench" / "peers_haystack"),
               # Its local trace capture and durable-run listing off: Haystack at its fastest.
               "--without-tracing", "--without-monitoring"]  # fmt: skip
    env = {
        "RAGMESH_PEER_EMBEDDER": EmbedderConfig.from_env({}).model_path,
        "RAGMESH_PEER_GGUF": default_model_path("model"),
        "RAGMESH_PEER_CORPUS": str(CORPUS),
        "RAGMESH_PEER_TOKENS": str(tokens),
        "RAGMESH_PEER_TOP_K": str(TOP_K),
        "RAGMESH_PEER_SYSTEM_PROMPT": SYSTEM_PROMPT,
        "RAGMESH_PEER_THREADS": str(llamacpp_threads()),  # the same as the mesh's generator
    }
    return PeerServer("hayhooks", command, log_dir, port, "/rag/run", env=env, probe={"question": "ready?"})


async def _rounds(streams: dict[str, Streamer], rounds: int, queries: int) -> dict[str, dict[int, list[LevelResult]]]:
    asked = questions()
    measured: dict[str, dict[int, list[LevelResult]]] = {name: {c: [] for c in LEVELS} for name in streams}
    for stream in streams.values():  # warm-up
        await run_level(stream, asked, 2, 1)
    for number in range(rounds):
        order = list(streams)[number % 2 :] + list(streams)[: number % 2]
        for level in LEVELS:
            for name in order:
                result = await run_level(streams[name], asked, level, max(1, queries // level))
                measured[name][level].append(result)
                print(f"pipeline round {number + 1} c={level}: {name} {result.summary()}", flush=True)
    return measured


async def _measure(mesh: Mesh, peer: PeerServer, args: Any) -> dict[str, dict[int, list[LevelResult]]]:
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with AsyncRagmeshClient(mesh.address, timeout=600) as client, httpx.AsyncClient(
        limits=limits, timeout=600
    ) as http:  # fmt: skip
        streams = {
            RAGMESH: mesh_streamer(client, COLLECTION, args.pipeline_tokens),
            HAYSTACK: haystack_streamer(http, peer.url),
        }
        return await _rounds(streams, args.rounds, args.pipeline_queries)


def measure(args: Any, logs: Path) -> dict[str, dict[int, LevelFigures]]:
    """Start both systems, measure them in alternating rounds, stop them."""
    with contextlib.ExitStack() as cleanup:
        peer = hayhooks(args.haystack_venv, logs, args.pipeline_tokens)
        cleanup.callback(peer.stop)
        (logs / "mesh").mkdir(exist_ok=True)
        mesh = start_mesh(cleanup, logs / "mesh")
        peer.wait_ready(timeout=900)
        measured = asyncio.run(_measure(mesh, peer, args))
    return {name: {level: figures(runs) for level, runs in levels.items()} for name, levels in measured.items()}
