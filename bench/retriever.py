"""Retriever benchmark: search latency through the service vs MilvusClient in-process, and recall.

Indexes N random vectors (100,000 x 384 by default) on a fresh milvus-lite path with the
retriever's own store code, then on the same data:

1. in-process: ``MilvusClient.search`` called directly, exactly as the store calls it (in a
   fresh child process, as lean as the service's);
2. the service: ``python -m services.retriever`` on loopback, the same searches over gRPC;
3. recall@k of the index against exact numpy search, for both.

milvus-lite lets one process own a path, so the phases take turns: ingest and close (which
waits for milvus-lite's background index builds), then, for several rounds, open and
measure in-process, close, start the service on the path, measure through it, stop it. A small probe first shows why the
retriever flushes after every upsert. Vectors are "clustered" by default (random centres
plus noise, like sentence embeddings, which have structure); ``--distribution iid`` gives
independent uniform directions, on which no approximate index reaches high recall.

Usage: ``python -m bench.retriever [--rows 20000]``; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ragmesh.mesh.processes import ServiceProcess
from ragmesh.v1 import common_pb2, retriever_pb2
from services.retriever.backend import ChunkRow, CollectionSpec, IndexKind, Metric
from services.retriever.config import RetrieverConfig
from services.retriever.schema import OUTPUT_FIELDS, VECTOR, dense_search_params
from services.retriever.store import MilvusStore
from tests.support.retriever import retriever_stub

Matrix = npt.NDArray[np.float32]
COLLECTION = "bench"


def make_vectors(rows: int, dim: int, distribution: str, rng: np.random.Generator, centres: Matrix) -> Matrix:
    """Unit vectors: around random cluster centres (noise 1.0 per axis, like the centre's), or iid."""
    if distribution == "iid":
        vectors = rng.standard_normal((rows, dim), dtype=np.float32)
    else:
        vectors = centres[rng.integers(0, len(centres), rows)] + rng.standard_normal((rows, dim), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def exact_top_k(vectors: Matrix, queries: Matrix, k: int) -> list[set[int]]:
    """Row numbers of the k most similar vectors (cosine) of each query, by brute force."""
    scores = queries @ vectors.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return [set(row.tolist()) for row in top]


def recall(found: Sequence[Sequence[str]], exact: Sequence[set[int]], k: int) -> float:
    """Share of the exact top k that the search returned."""
    hits = sum(len({int(chunk_id[1:]) for chunk_id in ids} & truth) for ids, truth in zip(found, exact, strict=True))
    return hits / (k * len(exact))


def timed(call: Callable[[Any], Any], items: Sequence[Any], repeat: int) -> tuple[list[float], list[Any]]:
    """Latency of each call (seconds) over ``repeat`` passes, and the results of the first pass."""
    latencies, results = [], []
    for round_number in range(repeat):
        for item in items:
            start = time.perf_counter()
            result = call(item)
            latencies.append(time.perf_counter() - start)
            if round_number == 0:
                results.append(result)
    return latencies, results


def percentiles(latencies: Sequence[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    return float(np.percentile(latencies, 50) * 1000), float(np.percentile(latencies, 95) * 1000)


def open_store(path: Path, ef: int) -> MilvusStore:
    """The retriever's store on ``path``."""
    return MilvusStore.open(
        RetrieverConfig.from_env({"RAGMESH_RETRIEVER_URI": str(path), "RAGMESH_RETRIEVER_HNSW_EF": str(ef)})
    )


def ingest(store: MilvusStore, spec: CollectionSpec, vectors: Matrix, batch: int) -> float:
    """Upsert every vector in batches through the store (each batch flushed); seconds taken."""
    store.create(spec)
    start = time.perf_counter()
    for first in range(0, len(vectors), batch):
        rows = [
            ChunkRow(f"c{i}", f"doc{i // 10}", f"chunk {i} of document {i // 10}", {"n": i}, vectors[i].tolist())
            for i in range(first, min(first + batch, len(vectors)))
        ]
        store.upsert(spec.name, rows, None)
    return time.perf_counter() - start


def probe_flush(store: MilvusStore, vectors: Matrix, rng: np.random.Generator) -> dict[str, float]:
    """Dense and BM25 p50 (ms) on rows still in milvus-lite's memtable, then after a flush."""
    spec = CollectionSpec("flush_probe", vectors.shape[1], Metric.COSINE, IndexKind.HNSW, full_text=True)
    store.create(spec)
    words = np.array(["alpha", "beta", "gamma", "delta", "river", "stone", "cloud", "ember", "frost", "grove"])
    rows = [
        {"chunk_id": f"p{i}", "document_id": "p", "text": " ".join(rng.choice(words, 12)), "metadata": {}, VECTOR: v}
        for i, v in enumerate(vectors.tolist())
    ]
    store.client.upsert(spec.name, rows)  # no flush: the rows stay in the memtable
    figures: dict[str, float] = {}
    for stage in ("unflushed", "flushed"):
        if stage == "flushed":
            start = time.perf_counter()
            store.client.flush(spec.name)
            figures["flush_seconds"] = time.perf_counter() - start
        dense, _ = timed(lambda q: _raw_search(store, spec, q, 10), vectors[:20].tolist(), 1)
        sparse, _ = timed(
            lambda text: store.client.search(spec.name, [text], limit=10, anns_field="sparse"), ["river stone"] * 20, 1
        )
        figures[f"dense_p50_ms_{stage}"] = percentiles(dense)[0]
        figures[f"bm25_p50_ms_{stage}"] = percentiles(sparse)[0]
    store.drop(spec.name)
    return figures


def _raw_search(store: MilvusStore, spec: CollectionSpec, query: list[float], k: int) -> list[str]:
    """``MilvusClient.search`` with the very arguments the store's dense search uses."""
    results = store.client.search(
        spec.name,
        [query],
        limit=k,
        filter="",
        output_fields=OUTPUT_FIELDS,
        search_params=dense_search_params(spec, store.tuning, k),
        anns_field=VECTOR,
    )
    return [str(hit["chunk_id"]) for hit in results[0]]


def through_service(path: Path, queries: list[list[float]], args: argparse.Namespace, log_dir: Path) -> Any:
    """Latencies and hit ids of the searches made through a real service process."""
    env = {"RAGMESH_RETRIEVER_URI": str(path), "RAGMESH_RETRIEVER_HNSW_EF": str(args.ef)}
    service = ServiceProcess("retriever", env, log_dir)
    try:
        service.wait_serving(timeout=1800)
        with retriever_stub(service.address) as stub:
            requests = [
                retriever_pb2.SearchRequest(
                    collection=COLLECTION, vector=q, top_k=args.top_k, mode=common_pb2.SEARCH_MODE_DENSE
                )
                for q in queries
            ]
            timed(stub.Search, requests[: args.warmup], 1)
            latencies, responses = timed(stub.Search, requests, args.repeat)
    finally:
        service.terminate()
    return latencies, [[hit.chunk_id for hit in response.hits] for response in responses]


def in_process(path: Path, spec: CollectionSpec, queries: list[list[float]], args: argparse.Namespace) -> Any:
    """Latencies and hit ids of the searches made with MilvusClient in this process."""
    store = open_store(path, args.ef)
    try:
        timed(lambda q: _raw_search(store, spec, q, args.top_k), queries[: args.warmup], 1)
        return timed(lambda q: _raw_search(store, spec, q, args.top_k), queries, args.repeat)
    finally:
        store.close()


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """All phases; the figures as a dict."""
    rng = np.random.default_rng(args.seed)
    centres = rng.standard_normal((max(1, args.rows // 100), args.dim), dtype=np.float32)
    vectors = make_vectors(args.rows, args.dim, args.distribution, rng, centres)
    queries = make_vectors(args.queries, args.dim, args.distribution, rng, centres)
    exact = exact_top_k(vectors, queries, args.top_k)
    path = work / "bench.db"
    spec = CollectionSpec(COLLECTION, args.dim, Metric.COSINE, IndexKind(args.index), full_text=True)
    store = open_store(path, args.ef)
    figures: dict[str, Any] = {"flush_probe": probe_flush(store, vectors[: args.probe_rows], rng)}
    figures["ingest_seconds"] = ingest(store, spec, vectors, args.batch)
    store.close()  # waits for milvus-lite's background compaction and index builds
    # The two sides take turns (one process owns the path); alternating them over several
    # rounds keeps a drift in the shared machine's load from favouring either side.
    local: list[float] = []
    remote: list[float] = []
    # The in-process side runs in a fresh process too, as lean as the service's (this one
    # holds the data set and its exact answers).
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as child:
        for _ in range(args.rounds):
            latencies, local_ids = child.submit(in_process, path, spec, queries.tolist(), args).result()
            local += latencies
            latencies, remote_ids = through_service(path, queries.tolist(), args, work)
            remote += latencies
    figures["in_process_p50_ms"], figures["in_process_p95_ms"] = percentiles(local)
    figures["service_p50_ms"], figures["service_p95_ms"] = percentiles(remote)
    figures["overhead_p50_ms"] = figures["service_p50_ms"] - figures["in_process_p50_ms"]
    figures["ratio_p50"] = figures["service_p50_ms"] / figures["in_process_p50_ms"]
    figures["ratio_p95"] = figures["service_p95_ms"] / figures["in_process_p95_ms"]
    figures["recall_at_k"] = recall(local_ids, exact, args.top_k)
    figures["service_recall_at_k"] = recall(remote_ids, exact, args.top_k)
    figures["same_hits_share"] = sum(a == b for a, b in zip(local_ids, remote_ids, strict=True)) / len(local_ids)
    return figures


def report(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    """Readable lines, then the JSON line."""
    probe = figures["flush_probe"]
    print(
        f"retriever benchmark: {args.rows:,} x {args.dim}-d {args.distribution} vectors, {args.index.upper()} "
        f"(ef {args.ef}), COSINE, {args.queries} queries x {args.repeat} x {args.rounds} rounds, top {args.top_k}"
    )
    print(f"ingest: {figures['ingest_seconds']:.1f} s in batches of {args.batch:,} (each flushed)")
    print(
        f"flush probe ({args.probe_rows:,} rows): dense p50 {probe['dense_p50_ms_unflushed']:.1f} ms unflushed -> "
        f"{probe['dense_p50_ms_flushed']:.1f} ms flushed; BM25 {probe['bm25_p50_ms_unflushed']:.1f} -> "
        f"{probe['bm25_p50_ms_flushed']:.1f} ms; the flush took {probe['flush_seconds']:.2f} s"
    )
    print(
        f"in-process MilvusClient.search: p50 {figures['in_process_p50_ms']:.2f} ms, "
        f"p95 {figures['in_process_p95_ms']:.2f} ms"
    )
    print(
        f"service over gRPC (loopback):   p50 {figures['service_p50_ms']:.2f} ms, "
        f"p95 {figures['service_p95_ms']:.2f} ms"
        f" -> ratio p50 {figures['ratio_p50']:.2f}x (target <= 1.3), p95 {figures['ratio_p95']:.2f}x; "
        f"p50 overhead {figures['overhead_p50_ms']:+.2f} ms"
    )
    print(
        f"recall@{args.top_k} vs exact numpy: {figures['recall_at_k']:.4f} in-process, "
        f"{figures['service_recall_at_k']:.4f} through the service (target >= 0.95); "
        f"identical hit lists {figures['same_hits_share']:.0%}"
    )
    print(json.dumps({"benchmark": "retriever", **vars(args), **figures}, sort_keys=True))


def main(argv: Sequence[str] | None = None) -> None:
    """Parse options, run, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1, help="timed passes over the queries per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of in-process and service passes")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--index", choices=[kind.value for kind in IndexKind], default="hnsw")
    parser.add_argument("--ef", type=int, default=64, help="HNSW search ef (RAGMESH_RETRIEVER_HNSW_EF)")
    parser.add_argument("--distribution", choices=["clustered", "iid"], default="clustered")
    parser.add_argument("--batch", type=int, default=10_000, help="rows per Upsert")
    parser.add_argument("--probe-rows", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ragmesh-bench-retriever-"))
    try:
        figures = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(args, figures)


if __name__ == "__main__":
    main()
