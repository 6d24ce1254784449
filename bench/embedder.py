"""Embedder benchmark: the service under 32 concurrent single-text callers vs the model
called in-process at batch 32, measured in one run on the same machine.

    make bench-embedder            # or: python -m bench.embedder --texts 1024 --callers 32

The last line printed is one JSON object with both throughputs and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import grpc

from ragmesh.mesh.processes import ServiceProcess
from ragmesh.v1 import embedder_pb2, embedder_pb2_grpc
from services.embedder.config import EmbedderConfig
from services.embedder.model import TransformersEncoder
from tests.support.metrics import scrape, value

TOPICS = ["vector search", "token streaming", "cache invalidation", "load balancing", "model batching"]


def make_texts(count: int) -> list[str]:
    """Sentences of realistic query length (10 to 30 tokens), all different."""
    return [
        f"Question {i}: how does {TOPICS[i % 5]} interact with {TOPICS[(i * 3 + 1) % 5]} "
        f"when {i % 17 + 2} replicas serve {i % 7 + 1} thousand requests per minute?"
        for i in range(count)
    ]


def in_process_throughput(encoder: TransformersEncoder, texts: list[str], batch_size: int) -> float:
    """Texts per second embedding ``texts`` in batches (tokenization included)."""
    encoder.embed_ids(encoder.encode_ids(texts[:batch_size]))  # warm-up
    start = time.perf_counter()
    for first in range(0, len(texts), batch_size):
        encoder.embed_ids(encoder.encode_ids(texts[first : first + batch_size]))
    return len(texts) / (time.perf_counter() - start)


async def service_throughput(address: str, texts: list[str], callers: int) -> tuple[float, list[float]]:
    """Texts per second with ``callers`` concurrent clients sending one text per call."""
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
        await stub.Embed(embedder_pb2.EmbedRequest(texts=texts[:callers]))  # warm-up

        async def caller(offset: int) -> None:
            for text in texts[offset::callers]:
                began = time.perf_counter()
                await stub.Embed(embedder_pb2.EmbedRequest(texts=[text], kind=embedder_pb2.EMBED_KIND_QUERY))
                latencies.append(time.perf_counter() - began)

        start = time.perf_counter()
        await asyncio.gather(*(caller(i) for i in range(callers)))
        elapsed = time.perf_counter() - start
    return len(texts) / elapsed, latencies


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values``."""
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    """Run both measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=1024, help="texts per measurement")
    parser.add_argument("--callers", type=int, default=32, help="concurrent single-text callers")
    parser.add_argument("--batch", type=int, default=32, help="in-process batch size (the baseline)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating baseline/service rounds")
    args = parser.parse_args()
    texts = make_texts(args.texts)
    config = EmbedderConfig.from_env({})
    encoder = TransformersEncoder(config.model_path, config.model_name, "auto", True, 0)
    service = ServiceProcess("embedder", {}, Path(tempfile.mkdtemp(prefix="bench-embedder-")))
    rounds = []
    try:
        service.wait_serving()
        for number in range(1, args.rounds + 1):
            # Alternate, so drift of the shared machine hits both sides alike.
            baseline = in_process_throughput(encoder, texts, args.batch)
            rounds.append(
                {"round": number, "in_process_texts_per_s": round(baseline, 1), **_serve(service, texts, args)}
            )
            rounds[-1]["ratio"] = round(rounds[-1]["service_texts_per_s"] / baseline, 3)
            print(f"round {number}: " + ", ".join(f"{k} {v}" for k, v in rounds[-1].items() if k != "round"))
    finally:
        service.terminate()
    median = sorted(rounds, key=lambda r: r["ratio"])[len(rounds) // 2]
    result = {
        "benchmark": "embedder",
        "texts": args.texts,
        "callers": args.callers,
        "in_process_batch": args.batch,
        **{k: v for k, v in median.items() if k != "round"},
        "target_ratio": 0.85,
        "rounds": rounds,
    }
    print(
        f"median round: in-process batch {args.batch} {median['in_process_texts_per_s']} texts/s; service with "
        f"{args.callers} concurrent single-text callers {median['service_texts_per_s']} texts/s "
        f"(p50 {median['service_p50_ms']} ms, p95 {median['service_p95_ms']} ms, "
        f"mean model batch {median['service_mean_batch']}); ratio {median['ratio']} (target >= 0.85)"
    )
    print(json.dumps(result))


def _serve(service: ServiceProcess, texts: list[str], args: argparse.Namespace) -> dict[str, float]:
    """One service measurement: throughput, latency percentiles and the mean model batch."""
    before = scrape(service.metrics_port)
    served, latencies = asyncio.run(service_throughput(service.address, texts, args.callers))
    after = scrape(service.metrics_port)
    batches = value(after, "ragmesh_embedder_batch_size_count") - value(before, "ragmesh_embedder_batch_size_count")
    batched = value(after, "ragmesh_embedder_batch_size_sum") - value(before, "ragmesh_embedder_batch_size_sum")
    return {
        "service_texts_per_s": round(served, 1),
        "service_p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "service_p95_ms": round(percentile(latencies, 95) * 1000, 2),
        "service_mean_batch": round(batched / batches, 1) if batches else 0.0,
    }


if __name__ == "__main__":
    main()
