"""Concurrency sweep of the whole mesh on its default settings: streamed queries through
Envoy at concurrency 1, 2, 4, 8, 16, 32 (after a warm-up), with the CPU each component spent
per query at each level; the same sweep against the in-process pipeline (the mesh overhead per
level); the previous default (the transformers backend, whole chunks in the prompt) through a
mesh of its own at c=1; and ingestion of a generated corpus against the embedder's in-process
batched throughput. Writes sweep.json, report.md and PNG plots under --out.

    make bench-sweep          # or: python -m bench.sweep --out bench/reports/sweep --levels 1,2,4,8

Last line: one JSON object with overhead_c1, qps_ratio_c8_c1, speedup_vs_transformers_c1,
prompt_tokens_p50, ingest_ratio and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from bench.e2e import questions
from bench.generator_stream import llamacpp_threads
from bench.inprocess import InProcessPipeline
from bench.machine import machine_facts
from bench.sweep_cpu import CpuMeter, demand_per_query
from bench.sweep_load import Finished, LevelResult, Streamer, median_ratio, mesh_streamer, run_level
from bench.sweep_report import write_report
from ragmesh.client import AsyncRagmeshClient, RagmeshClient, files
from ragmesh.mesh.launcher import Mesh
from ragmesh.mesh.plan import MeshPlan
from ragmesh.mesh.processes import ROOT, free_port
from ragmesh.vocabulary import TextDelta
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import FinalEvent, QueryInput, Sampling

COLLECTION = "sweep_docs"
CORPUS = ROOT / "corpus" / "docs"
#: The default before llama.cpp and the context budget: what speedup_vs_transformers_c1 is against.
PREVIOUS_DEFAULT = {
    "generator": {"RAGMESH_GENERATOR_BACKEND": "transformers"},
    "orchestrator": {"RAGMESH_ORCHESTRATOR_CONTEXT": "chunks"},
}


def generated_corpus(count: int) -> list[dict[str, str]]:
    """``count`` documents of a few sentences each (about one chunk each)."""
    topics = ["Envoy", "Milvus", "Redis", "the generator", "the embedder", "Kubernetes"]
    return [
        {"id": f"gen-{i}", "text": f"Note {i} about {topics[i % 6]}: " + " ".join(f"fact{i}-{j}." for j in range(40))}
        for i in range(count)
    ]


def _local_streamer(pipeline: InProcessPipeline, tokens: int) -> Callable[[str], AsyncIterator[str | Finished]]:
    async def stream(question: str) -> AsyncIterator[str | Finished]:
        request = QueryInput(question, COLLECTION, sampling=Sampling(max_new_tokens=tokens), bypass_cache=True)
        async for event in pipeline.stream(request):
            if isinstance(event, TextDelta):
                yield event.text
            elif isinstance(event, FinalEvent):
                yield Finished(event.usage.prompt_tokens)

    return stream


def turns_per_caller(args: argparse.Namespace, level: int) -> int:
    """Queries each caller asks at ``level``: --per-caller, or more so that the level asks at
    least --min-queries in all (two queries at c=1 make a median of nothing)."""
    return max(args.per_caller, -(-args.min_queries // level))


async def _metered_level(
    meter: CpuMeter, stream: Streamer, asked: list[str], level: int, per_caller: int
) -> LevelResult:
    before = meter.read()
    result = await run_level(stream, asked, level, per_caller)
    result.cpu_per_query = demand_per_query(before, meter.read(), len(result.e2e))
    return result


async def _sweep(mesh: Mesh, local: InProcessPipeline, args: argparse.Namespace) -> dict[str, list[LevelResult]]:
    asked = questions()
    results: dict[str, list[LevelResult]] = {"mesh": [], "in_process": []}
    meter = CpuMeter(mesh)
    async with AsyncRagmeshClient(mesh.address, timeout=600) as client:
        remote, here = mesh_streamer(client, COLLECTION, args.tokens), _local_streamer(local, args.tokens)
        await run_level(remote, asked, 2, 1)  # warm-up
        await run_level(here, asked, 2, 1)
        for level in args.levels:
            turns = turns_per_caller(args, level)
            results["mesh"].append(await _metered_level(meter, remote, asked, level, turns))
            results["in_process"].append(await run_level(here, asked, level, turns))
            print(f"c={level}: mesh {results['mesh'][-1].summary()}", flush=True)
    return results


async def _previous_default_c1(mesh: Mesh, args: argparse.Namespace) -> LevelResult:
    """The previous default's c=1 level (with its own warm-up) through its own mesh."""
    async with AsyncRagmeshClient(mesh.address, timeout=600) as client:
        stream = mesh_streamer(client, COLLECTION, args.tokens)
        await run_level(stream, questions(), 1, 1)
        result = await _metered_level(CpuMeter(mesh), stream, questions(), 1, turns_per_caller(args, 1))
    print(f"c=1: previous default {result.summary()}", flush=True)
    return result


def _ingest_rates(
    loop: asyncio.AbstractEventLoop, mesh: Mesh, local: InProcessPipeline, documents: int
) -> dict[str, float]:
    corpus = generated_corpus(documents)
    started = time.perf_counter()
    with RagmeshClient(mesh.address, timeout=3600) as client:
        progress = client.ingest(corpus, "sweep_ingest")
    seconds = time.perf_counter() - started
    texts = [d["text"] for d in corpus[:512]]
    embedder = local.ports.embedder
    # The in-process engines run on ``loop`` (their batchers are bound to it).
    loop.run_until_complete(embedder.embed(texts[:32], False, Deadline(None)))  # warm-up
    began = time.perf_counter()

    async def embed_all() -> None:
        for first in range(0, len(texts), 32):
            await embedder.embed(texts[first : first + 32], False, Deadline(None))

    loop.run_until_complete(embed_all())
    baseline = len(texts) / (time.perf_counter() - began)
    chunks_per_s = progress.chunks_done / seconds
    return {
        "ingest_documents_per_s": round(progress.documents_done / seconds, 2),
        "ingest_chunks_per_s": round(chunks_per_s, 2),
        "embedder_in_process_texts_per_s": round(baseline, 2),
        "ingest_ratio": round(chunks_per_s / baseline, 3),
    }


def start_mesh(cleanup: contextlib.ExitStack, workdir: Path, env: dict[str, dict[str, str]] | None = None) -> Mesh:
    """The whole mesh on free ports (``env`` per component), its data and logs in ``workdir``,
    the sample corpus indexed; stopped by ``cleanup``."""
    plan = MeshPlan(envoy_port=free_port(), envoy_admin_port=free_port(), default_ports=False,
                    retriever_uri=str(workdir / "mesh.db"), log_dir=workdir / "logs", env=env or {})  # fmt: skip
    mesh = Mesh(plan)
    cleanup.callback(mesh.stop)
    mesh.start(report=lambda line: None)
    with RagmeshClient(mesh.address) as client:
        client.ingest(files.load([CORPUS]).documents, COLLECTION)
    return mesh


def _previous_default(workdir: Path, args: argparse.Namespace) -> LevelResult:
    """Start the previous default's mesh (after the default's stopped), measure c=1, stop it."""
    with contextlib.ExitStack() as cleanup:
        mesh = start_mesh(cleanup, workdir / "previous", PREVIOUS_DEFAULT)
        return asyncio.run(_previous_default_c1(mesh, args))


def main() -> None:
    """Start the mesh and the in-process pipeline, sweep, ingest, report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench/reports/sweep"))
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--per-caller", type=int, default=2, help="queries each caller asks per level")
    parser.add_argument("--min-queries", type=int, default=8, help="queries each level asks at least, in all")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--documents", type=int, default=2000)
    args = parser.parse_args()
    machine = machine_facts()  # before the run: its load average tells whether the machine was shared
    workdir = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    with contextlib.ExitStack() as cleanup:
        mesh = start_mesh(cleanup, workdir)
        local = InProcessPipeline(workdir / "local.db")
        loop = asyncio.new_event_loop()
        cleanup.callback(lambda: loop.run_until_complete(local.close()))
        loop.run_until_complete(local.start())
        loop.run_until_complete(local.ingest(CORPUS, COLLECTION))
        results = loop.run_until_complete(_sweep(mesh, local, args))
        ingest = _ingest_rates(loop, mesh, local, args.documents)
    results["previous_default"] = [_previous_default(workdir, args)]
    summary = _summary(results, ingest)
    settings = {"answer_tokens": args.tokens, "per_caller": args.per_caller, "min_queries": args.min_queries,
                "documents": args.documents, "generator_threads": llamacpp_threads()}  # fmt: skip
    machine |= {"load_average_after": list(os.getloadavg())}
    write_report(args.out, results, ingest, summary, machine, settings)
    print(json.dumps({"benchmark": "sweep", **summary}))


def _summary(results: dict[str, list[LevelResult]], ingest: dict[str, float]) -> dict[str, float]:
    mesh, local = results["mesh"], results["in_process"]
    by_level = {r.concurrency: r for r in mesh}
    qps = {c: r.summary()["qps"] for c, r in by_level.items()}
    previous = results["previous_default"][0]
    return {
        "overhead_c1": median_ratio(mesh[0].e2e, local[0].e2e),
        "qps_ratio_c8_c1": round(qps.get(8, 0.0) / qps[1], 3) if qps.get(1) else 0.0,
        # How many times faster the default answers at c=1 than the previous default (p50 over p50).
        "speedup_vs_transformers_c1": median_ratio(previous.e2e, by_level[1].e2e) if 1 in by_level else 0.0,
        "prompt_tokens_p50": mesh[0].summary()["prompt_tokens_p50"],
        "ingest_ratio": ingest["ingest_ratio"],
        "errors": sum(r.errors for r in mesh) + previous.errors,
    }


if __name__ == "__main__":
    main()
