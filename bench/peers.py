"""ragmesh beside the systems a user would otherwise pick, measured in one run on one machine.

    make bench-peers      # or: python -m bench.peers --peers-venv .venv-peers [--out bench/reports/peers]

Embedding: bench.embedder's load (its texts; 32 concurrent callers, one text per call) against
ragmesh's embedder service (gRPC), infinity-emb's server and a Ray Serve ``@serve.batch``
deployment (both HTTP, both from the peers venv, on the same model directory), each as a ratio
to ragmesh's encoder called in this process at batch 32 in the same round; and
sentence-transformers in-process in the peers venv (their stack without their serving).
Generation: ragmesh's generator with the llamacpp backend and llama-cpp-python's server against
llama.cpp in this process (bench.peers_generation). The whole pipeline: ragmesh's mesh through
Envoy against Haystack served by Hayhooks, at 1 and 8 callers (bench.peers_pipeline, from the
Haystack venv .venv-haystack). Rounds alternate the systems so drift of a shared machine hits
all alike; each row is its median round. Writes peers.json and report.md under --out. The last
line printed is one JSON object with the ratios, among them embedder_ratio,
generator_vs_llamacpp_server, pipeline_qps_vs_haystack_c8 and pipeline_p50_vs_haystack_c1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import peers_generation, peers_pipeline, peers_servers
from bench.embedder import in_process_throughput, make_texts, service_throughput
from bench.peers_report import Row, Sample, baseline_row, fold, ratios, write
from bench.peers_servers import with_cpu
from ragmesh.mesh.processes import ROOT, ServiceProcess
from services.embedder.config import EmbedderConfig
from services.embedder.model import TransformersEncoder

RAGMESH, INFINITY, RAY, STACK = (
    "ragmesh embedder",
    "infinity-emb",
    "Ray Serve (@serve.batch)",
    "sentence-transformers in-process (peers venv)",
)
PEER_PACKAGES = ("infinity-emb", "ray", "sentence-transformers", "transformers", "torch")


def _stack_rate(python: Path, model: str, texts: list[str], batch: int, threads: int) -> Sample:
    """sentence-transformers' batched throughput in the peers venv (bench/peers_stack.py)."""
    script = Path(__file__).with_name("peers_stack.py")
    done = subprocess.run(
        [str(python), str(script), "--model", model, "--batch", str(batch), "--threads", str(threads)],
        input=json.dumps(texts), capture_output=True, text=True, timeout=600, check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | peers_servers.PEER_ENV,
    )  # fmt: skip
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return Sample(float(figures["texts_per_s"]), items=len(texts), client_cpu_s=float(figures["cpu_s"]))


def _versions(python: Path) -> dict[str, str]:
    code = "import importlib.metadata as m, json, sys; print(json.dumps({p: m.version(p) for p in sys.argv[1:]}))"
    done = subprocess.run([str(python), "-c", code, *PEER_PACKAGES], check=False, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    return dict(json.loads(done.stdout)) if done.returncode == 0 else {}


def embedding(args: argparse.Namespace, logs: Path) -> tuple[list[Row], dict[str, str]]:
    """The embedding rows: baseline, ragmesh, infinity-emb, Ray Serve, the peers' stack."""
    texts = make_texts(args.texts)
    config = EmbedderConfig.from_env({})
    threads = os.cpu_count() or 1
    encoder = TransformersEncoder(config.model_path, config.model_name, "auto", True, 0)
    python = args.peers_venv / "bin" / "python"
    # Every measurement gets its own baseline, taken just before it with every server stopped:
    # load from elsewhere on a shared machine drifts within minutes, not only between runs.
    baselines: dict[str, list[Sample]] = {name: [] for name in (RAGMESH, INFINITY, RAY, STACK)}
    samples: dict[str, list[Sample]] = {RAGMESH: [], INFINITY: [], RAY: [], STACK: []}
    with contextlib.ExitStack() as cleanup:
        service, peers, freezer = _start(cleanup, args, config.model_path, logs, threads)
        measures: dict[str, Callable[[], Sample]] = {
            RAGMESH: lambda: Sample(*asyncio.run(service_throughput(service.address, texts, args.callers)), len(texts)),
            **{name: _http(peer.url, texts, args.callers) for name, peer in peers.items()},
        }

        def baseline() -> Sample:
            freezer.only(None)
            return with_cpu(lambda: Sample(in_process_throughput(encoder, texts, args.batch), items=len(texts)), None)

        for number in range(args.rounds):
            order = list(measures)[number % 3 :] + list(measures)[: number % 3]  # who goes first rotates
            for name in order:
                baselines[name].append(baseline())
                freezer.only(name)
                samples[name].append(with_cpu(measures[name], freezer.members[name]))
            if not args.no_stack:
                baselines[STACK].append(baseline())
                samples[STACK].append(_stack_rate(python, config.model_path, texts, args.batch, threads))
            print(f"embedding round {number + 1}: " + ", ".join(
                f"{name} {s[-1].throughput:.1f} (in-process {baselines[name][-1].throughput:.1f}) texts/s"
                for name, s in samples.items() if s), flush=True)  # fmt: skip
    how = f"{args.callers} concurrent callers, 1 text per call"
    pooled = [b for runs in baselines.values() for b in runs]
    rows = [
        baseline_row("in-process, batch 32", "ragmesh's TransformersEncoder in the benchmark process", pooled),
        fold(RAGMESH, f"gRPC on loopback, {how}", samples[RAGMESH], baselines[RAGMESH]),
        fold(INFINITY, f"HTTP /embeddings on loopback, {how}", samples[INFINITY], baselines[INFINITY]),
        fold(RAY, f"HTTP on loopback, {how}", samples[RAY], baselines[RAY]),
    ]  # fmt: skip
    if samples[STACK]:
        how = "SentenceTransformer.encode, batches of 32, no server"
        rows.append(fold(STACK, how, samples[STACK], baselines[STACK]))
    return rows, _versions(python)


def _start(
    cleanup: contextlib.ExitStack, args: argparse.Namespace, model: str, logs: Path, threads: int
) -> tuple[ServiceProcess, dict[str, peers_servers.PeerServer], peers_servers.Freezer]:
    """ragmesh's embedder and both peers, loading side by side, stopped by ``cleanup``."""
    service = ServiceProcess("embedder", {}, logs)
    cleanup.callback(service.terminate)
    peers_bin = args.peers_venv / "bin"
    peers = {
        INFINITY: peers_servers.infinity(peers_bin, model, logs, args.batch),
        RAY: peers_servers.ray_serve(peers_bin, model, logs, args.batch, threads),
    }
    for peer in peers.values():
        cleanup.callback(peer.stop)
    servers = {RAGMESH: lambda: [service.process.pid]} | {name: peer.pids for name, peer in peers.items()}
    freezer = peers_servers.Freezer(servers)
    cleanup.callback(freezer.thaw_all)  # runs first: stopped processes would ignore SIGTERM
    service.wait_serving(timeout=600)
    for peer in peers.values():
        peer.wait_ready(timeout=900)
    return service, peers, freezer


def _http(url: str, texts: list[str], callers: int) -> Callable[[], Sample]:
    return lambda: asyncio.run(peers_servers.http_load(url, texts, callers))


def generation(args: argparse.Namespace, logs: Path) -> tuple[list[Row], int]:
    """The generation rows: llama.cpp in-process, ragmesh's llamacpp service, llama.cpp's server."""
    baselines, samples, threads = peers_generation.measure(args.rounds, args.gen_calls, logs)
    pooled = [b for runs in baselines.values() for b in runs]
    rows = [baseline_row("llama.cpp in-process", "Llama.create_chat_completion in the benchmark process", pooled)]
    rows += [fold(name, how, samples[name], baselines[name]) for name, how in peers_generation.SYSTEMS.items()]
    return rows, threads


def main() -> None:
    """Measure both halves, write the report, print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "reports" / "peers")
    parser.add_argument("--peers-venv", type=Path, default=ROOT / ".venv-peers", help="made by make bench-peers")
    parser.add_argument("--texts", type=int, default=1024, help="texts per embedding measurement")
    parser.add_argument("--callers", type=int, default=32, help="concurrent single-text callers")
    parser.add_argument("--batch", type=int, default=32, help="in-process batch, and every server's max batch")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (the median one is reported)")
    parser.add_argument("--gen-calls", type=int, default=4, help="completions per system and round")
    parser.add_argument("--no-stack", action="store_true", help="skip sentence-transformers in-process")
    parser.add_argument("--no-generation", action="store_true", help="skip the generation half")
    parser.add_argument("--haystack-venv", type=Path, default=ROOT / ".venv-haystack", help="made by make bench-peers")
    parser.add_argument("--pipeline-tokens", type=int, default=32, help="answer tokens in the pipeline half")
    parser.add_argument("--pipeline-queries", type=int, default=8, help="queries per system, level and round")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the whole pipeline beside Haystack")
    args = parser.parse_args()
    if not (args.peers_venv / "bin" / "infinity_emb").exists():
        parser.error(f"{args.peers_venv} has no infinity_emb: run make bench-peers (it builds the peers venv)")
    if not args.no_pipeline and not (args.haystack_venv / "bin" / "hayhooks").exists():
        parser.error(f"{args.haystack_venv} has no hayhooks: run make bench-peers (it builds the Haystack venv)")
    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as logs:
        embed_rows, versions = embedding(args, Path(logs))
        gen_rows, threads = ([], 0) if args.no_generation else generation(args, Path(logs))
        pipeline = {} if args.no_pipeline else peers_pipeline.measure(args, Path(logs))
    facts = _facts(args, started, load_before, versions, threads)
    sections = {"Embedding (all-MiniLM-L6-v2)": ("texts/s", "text", embed_rows)}
    if gen_rows:
        sections["Generation (SmolLM2-135M-Instruct GGUF, llama.cpp)"] = ("tokens/s", "token", gen_rows)
    tables = {}
    if pipeline:
        figures = {name: {level: f.__dict__ for level, f in levels.items()} for name, levels in pipeline.items()}
        tables[f"Whole pipeline beside Haystack ({args.pipeline_tokens}-token answers)"] = (
            peers_pipeline.table(pipeline), figures)  # fmt: skip
    report = write(args.out, sections, facts, _notes(args), tables)
    print(report.read_text())
    print(json.dumps(headline(embed_rows, gen_rows, pipeline)))


def headline(
    embed_rows: list[Row], gen_rows: list[Row], pipeline: dict[str, dict[int, peers_pipeline.LevelFigures]]
) -> dict[str, Any]:
    """The last JSON line: every system's ratio, and the four figures the peers are judged by."""
    result: dict[str, Any] = {"benchmark": "peers", "embedding": ratios(embed_rows[1:])}
    result["embedder_ratio"] = next(row.ratio for row in embed_rows if row.system == RAGMESH)
    if gen_rows:
        result["generation"] = ratios(gen_rows[1:])
        rate = {row.system: row.throughput for row in gen_rows}
        ours, server = rate[peers_generation.RAGMESH], rate[peers_generation.LLAMA_SERVER]
        result["generator_vs_llamacpp_server"] = round(ours / server, 3) if server else 0.0
    if pipeline:
        result |= peers_pipeline.comparison(pipeline)
    return result


def _facts(
    args: argparse.Namespace, started: datetime.datetime, load: tuple[float, float, float],
    versions: dict[str, str], threads: int,
) -> dict[str, Any]:  # fmt: skip
    return {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"nproc {os.cpu_count()}, load average {load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at "
        f"the end ({'shared with other work' if load[0] > 1.5 else 'quiet before the run'})",
        "embedding load": f"{args.texts} texts (bench.embedder.make_texts), {args.callers} concurrent callers, "
        f"1 text per call; servers batch up to {args.batch}; {args.rounds} rounds",
        "generation load": f"bench.generator's prompt, {peers_generation.NEW_TOKENS} greedy tokens, 1 stream, "
        f"{args.gen_calls} completions per system and round, llama.cpp threads {threads}",
        "peers venv": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "pipeline load": f"the sample corpus's questions, {args.pipeline_tokens}-token greedy answers, callers 1 and "
        f"8, {args.pipeline_queries} queries per system, level and round; Haystack venv: bench/peers_haystack",
        "command": "make bench-peers",
    }


def _notes(args: argparse.Namespace) -> list[str]:
    return [
        "Every ratio is a system's throughput over an in-process baseline measured just before it (all servers "
        "stopped); a row is its median round (throughput, ratio, latencies, CPU from that round), the last "
        "column every round. The in-process row is the median of all its measurements.",
        "Latency: per call as the client sees it (one text for embedding, one whole completion for generation).",
        "Only the system being measured runs: the other servers are SIGSTOPped meanwhile (idle servers poll).",
        "CPU per item: user + system CPU of the benchmark process (the client; in parentheses) and of the "
        "server's processes (a peer's whole session), warm-up included, per text or token. Its ratio to "
        "the in-process baseline drifts far less with other load on a shared machine than throughput does.",
        "infinity-emb: `infinity_emb v2 --engine torch --device cpu --batch-size 32 --no-bettertransformer "
        "--no-vector-disk-cache` (no cache: the rounds repeat the texts). Ray Serve: local-only Ray "
        "(`ray.init(num_cpus=nproc, include_dashboard=False)`), one replica with `num_cpus=nproc`, "
        "`max_ongoing_requests=128`, `@serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01)` over "
        "sentence-transformers. ragmesh: the embedder's defaults (batch 32, 10 ms wait).",
        "The peers need pins ragmesh cannot share (infinity-emb 0.0.78: numpy<2, click<8.2, rich<14, "
        "uvicorn<0.33, sentence-transformers<4, hence transformers 4.x), so they run from their own venv "
        "(bench/peers-requirements.txt); the sentence-transformers row shows what that stack does in-process.",
        "Every server listens on 127.0.0.1 only, is bounded in start-up time and stopped at the end.",
        "Whole pipeline: ragmesh is the default mesh (`ragmesh up`'s settings; the answer cache bypassed per "
        "request); Haystack is bench/peers_haystack/rag/pipeline_wrapper.py under `hayhooks run` — "
        "SentenceTransformers embedders on the same model directory, the in-memory document store (cosine, "
        "top 4 of 150-word passages), ragmesh's system prompt, LlamaCppChatGenerator on the same GGUF with "
        "the same threads and n_ctx 2048, greedy; llama.cpp's Llama is not thread-safe, so its generation "
        "runs under a lock. Latency is the whole answer as the client sees it (Hayhooks does not stream).",
    ]


if __name__ == "__main__":
    main()
