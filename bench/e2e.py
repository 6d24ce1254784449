"""End-to-end benchmark: the same questions answered by the mesh (Envoy, every component
its own process on loopback) and by the same pipeline in-process (same models and store
code, no gRPC), alternating rounds; plus answers served from the L1 and the L2 cache.

    make bench-e2e            # or: python -m bench.e2e --rounds 3 --tokens 32 --hits 200

The last line printed is one JSON object with every figure and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.chat_api import chat_vs_grpc
from bench.inprocess import InProcessPipeline
from ragmesh.client import RagmeshClient, files
from ragmesh.mesh.launcher import Mesh
from ragmesh.mesh.plan import MeshPlan
from ragmesh.mesh.processes import ROOT, ServiceProcess, free_port
from ragmesh.vocabulary import TextDelta
from services.orchestrator.core.domain import QueryInput, Sampling
from tests.support.redis_server import RedisServer

CORPUS = ROOT / "corpus" / "docs"
COLLECTION = "bench_docs"


def questions() -> list[str]:
    """The sample corpus's questions."""
    lines = (ROOT / "corpus" / "questions.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def p50_ms(values: list[float]) -> float:
    """Median, in milliseconds."""
    return round(statistics.median(values) * 1000, 2)


async def in_process_round(pipeline: InProcessPipeline, asked: list[str], tokens: int) -> tuple[list[float], list[str]]:
    """Latency and answer of each question through the in-process pipeline."""
    latencies, answers = [], []
    for question in asked:
        request = QueryInput(question, COLLECTION, sampling=Sampling(max_new_tokens=tokens), bypass_cache=True)
        started = time.perf_counter()
        text = [e.text async for e in pipeline.stream(request) if isinstance(e, TextDelta)]
        latencies.append(time.perf_counter() - started)
        answers.append("".join(text))
    return latencies, answers


def mesh_round(client: RagmeshClient, asked: list[str], tokens: int) -> tuple[list[float], list[str]]:
    """Latency and answer of each question through the mesh (cache bypassed)."""
    latencies, answers = [], []
    for question in asked:
        started = time.perf_counter()
        answer = client.query(question, COLLECTION, max_new_tokens=tokens, bypass_cache=True)
        latencies.append(time.perf_counter() - started)
        answers.append(answer.text)
    return latencies, answers


def repeated(call: Callable[[], object], count: int) -> list[float]:
    """Latencies of ``count`` calls after a few warm-up ones."""
    for _ in range(5):
        call()
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - started)
    return latencies


def _asker(client: RagmeshClient, question: str, tokens: int) -> Callable[[], object]:
    return lambda: client.query(question, COLLECTION, max_new_tokens=tokens)


def _cache_hits(mesh: Mesh, l2_only: ServiceProcess, tokens: int, count: int) -> dict[str, float]:
    """p50 of answers served from L1 (direct and through Envoy) and from L2."""
    question = questions()[0]
    orchestrator = next(r for r in mesh.replicas if r.component == "orchestrator")
    figures: dict[str, float] = {}
    for name, address, level in [
        ("l1_hit_p50_ms", orchestrator.address, "l1"),
        ("l1_hit_through_envoy_p50_ms", mesh.address, "l1"),
        ("l2_hit_p50_ms", l2_only.address, "l2"),
    ]:
        with RagmeshClient(address) as client:
            client.query(question, COLLECTION, max_new_tokens=tokens)  # computed once, then cached
            served = client.query(question, COLLECTION, max_new_tokens=tokens)
            assert served.cache == level, f"{name}: expected an {level} hit, got {served.cache}"
            figures[name] = p50_ms(repeated(_asker(client, question, tokens), count))
    return figures


def main() -> None:
    """Start the mesh and the in-process pipeline, measure both and the cache, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="alternating in-process / mesh rounds")
    parser.add_argument("--tokens", type=int, default=32, help="max new tokens per answer (greedy)")
    parser.add_argument("--hits", type=int, default=200, help="cached answers timed per cache level")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    # Everything started is registered here as it starts, and stopped in reverse order
    # (every callback runs, even when starting a later piece or another callback fails).
    with contextlib.ExitStack() as cleanup:
        result = _measure(cleanup, workdir, args)
    _report(result)


def _measure(cleanup: contextlib.ExitStack, workdir: Path, args: argparse.Namespace) -> dict[str, object]:
    """Start Redis, the mesh, an L1-less orchestrator and the in-process pipeline (each
    registered with ``cleanup``), then run the comparison and the cache timings."""
    redis = RedisServer(workdir)
    redis.start()  # a server that never answers is stopped before start() raises
    cleanup.callback(redis.stop)
    loop = asyncio.new_event_loop()
    cleanup.callback(loop.close)
    inprocess = InProcessPipeline(workdir / "inprocess.db")
    cleanup.callback(lambda: loop.run_until_complete(inprocess.close()))  # safe after a failed start()
    mesh = Mesh(
        MeshPlan(
            envoy_port=free_port(),
            envoy_admin_port=free_port(),
            default_ports=False,
            retriever_uri=str(workdir / "mesh.db"),
            redis_url=redis.url,
            log_dir=workdir / "logs",
        )
    )
    cleanup.callback(mesh.stop)
    mesh.start(report=lambda line: None)
    l2_only = _l1_less_orchestrator(mesh, redis.url, workdir)
    cleanup.callback(l2_only.terminate)
    with RagmeshClient(mesh.address) as client:
        client.ingest(files.load([CORPUS]).documents, COLLECTION)
        loop.run_until_complete(inprocess.start())
        loop.run_until_complete(inprocess.ingest(CORPUS, COLLECTION))
        result = _compare(loop, inprocess, client, args)
    result.update(_cache_hits(mesh, l2_only, args.tokens, args.hits))
    result.update(chat_vs_grpc(mesh.address, questions(), COLLECTION, args.tokens, args.rounds))
    return result


def _l1_less_orchestrator(mesh: Mesh, redis_url: str, workdir: Path) -> ServiceProcess:
    """A second orchestrator with L1 off, sharing Redis: every repeat is an L2 hit."""
    env = {f"RAGMESH_ORCHESTRATOR_{c}_ADDR": mesh.internal_address for c in ("EMBEDDER", "RETRIEVER", "GENERATOR")}
    env |= {"RAGMESH_ORCHESTRATOR_REDIS_URL": redis_url, "RAGMESH_ORCHESTRATOR_CACHE_L1_ENTRIES": "0"}
    service = ServiceProcess("orchestrator", env, workdir / "logs")
    try:
        service.wait_serving()
    except BaseException:
        service.terminate()
        raise
    return service


def _compare(
    loop: asyncio.AbstractEventLoop, inprocess: InProcessPipeline, client: RagmeshClient, args: argparse.Namespace
) -> dict[str, object]:
    """Alternate in-process and mesh rounds over the sample questions."""
    asked = questions()
    local: list[float] = []
    meshed: list[float] = []
    same = 0
    for _ in range(args.rounds):
        local_times, local_answers = loop.run_until_complete(in_process_round(inprocess, asked, args.tokens))
        mesh_times, mesh_answers = mesh_round(client, asked, args.tokens)
        local += local_times
        meshed += mesh_times
        same += sum(a == b for a, b in zip(local_answers, mesh_answers, strict=True))
    return {
        "questions": len(asked) * args.rounds,
        "max_new_tokens": args.tokens,
        "in_process_p50_ms": p50_ms(local),
        "mesh_p50_ms": p50_ms(meshed),
        "mesh_over_in_process": round(statistics.median(meshed) / statistics.median(local), 3),
        "same_answers": f"{same}/{len(asked) * args.rounds}",
    }


def _report(result: dict[str, object]) -> None:
    print(
        f"in-process pipeline p50 {result['in_process_p50_ms']} ms, mesh p50 {result['mesh_p50_ms']} ms "
        f"-> {result['mesh_over_in_process']}x (target <= 1.10); identical answers {result['same_answers']}"
    )
    print(
        f"cache hits p50: L1 {result['l1_hit_p50_ms']} ms direct, {result['l1_hit_through_envoy_p50_ms']} ms "
        f"through Envoy (target <= 2); L2 {result['l2_hit_p50_ms']} ms (target <= 5)"
    )
    print(
        f"chat API through Envoy p50 {result['chat_http_p50_ms']} ms vs gRPC {result['chat_grpc_p50_ms']} ms "
        f"-> {result['chat_http_over_grpc']}x (target <= 1.05); first token {result['chat_ttft_difference_ms']} ms "
        "later (target <= 10)"
    )
    targets = {"ratio": 1.10, "l1_ms": 2, "l2_ms": 5, "chat_ratio": 1.05, "chat_ttft_ms": 10}
    print(json.dumps({"benchmark": "e2e", **result, "targets": targets}))


if __name__ == "__main__":
    main()
