"""Ingestion through the workers: throughput of a generated corpus with 1 and 2 workers vs
the embedder model in-process at batch 64, and the latency of concurrent retrieval-only
queries while ingestion runs — in the workers, and (the old way) inside the orchestrator
(its streamed Ingest), measured in one run on the same machine.

    make bench-ingest-workers      # or: python -m bench.ingest_workers --documents 2000 --jobs 4

The corpus is split into ``--jobs`` ingestion jobs so that several workers can share it
(one job is one task: it runs on one worker). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from ragmesh.client import RagmeshClient
from ragmesh.mesh.processes import ServiceProcess
from services.embedder.config import EmbedderConfig
from services.embedder.model import TransformersEncoder
from tests.support.redis_server import RedisServer
from tests.support.stack import start_orchestrator, start_worker

TOPICS = ["vector search", "token streaming", "cache invalidation", "load balancing", "model batching"]


def corpus(count: int) -> list[dict[str, object]]:
    """Documents of 60 to 120 words (one chunk each at the default 200 tokens), all different."""
    return [
        {
            "id": f"doc-{i}",
            "text": " ".join(
                f"Note {i}.{j}: {TOPICS[(i + j) % 5]} meets {TOPICS[(i * 3 + j) % 5]} at scale {j}."
                for j in range(6 + i % 7)
            ),
        }
        for i in range(count)
    ]


def in_process_rate(texts: list[str], batch_size: int = 64) -> float:
    """Texts per second through the embedder model in-process (tokenization included)."""
    config = EmbedderConfig.from_env({})
    encoder = TransformersEncoder(config.model_path, config.model_name, "auto", True, 0)
    encoder.embed_ids(encoder.encode_ids(texts[:batch_size]))  # warm-up
    started = time.perf_counter()
    for first in range(0, len(texts), batch_size):
        encoder.embed_ids(encoder.encode_ids(texts[first : first + batch_size]))
    return len(texts) / (time.perf_counter() - started)


class Prober:
    """Callers sending retrieval-only queries in a loop, recording each latency."""

    def __init__(self, address: str, collection: str, callers: int) -> None:
        self.address, self.collection, self.callers = address, collection, callers
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(callers)]

    def _run(self, index: int) -> None:
        with RagmeshClient(self.address, timeout=60) as client:
            for n in range(100_000):  # bounded; stopped by the event long before
                if self._stop.is_set():
                    return
                started = time.perf_counter()
                client.query(f"How does {TOPICS[(index + n) % 5]} scale?", self.collection, retrieval_only=True)
                self.latencies.append(time.perf_counter() - started)

    def __enter__(self) -> Prober:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def summary(self) -> dict[str, float]:
        """p50 and p95 in milliseconds."""
        ordered = sorted(self.latencies) or [0.0]
        return {
            "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
            "queries": len(self.latencies),
        }


def through_workers(client: RagmeshClient, documents: list[dict[str, object]], jobs: int, collection: str) -> float:
    """Seconds to index ``documents`` as ``jobs`` background jobs, submit to last job done."""
    size = -(-len(documents) // jobs)
    started = time.perf_counter()
    ids = [client.submit_job(documents[i : i + size], collection) for i in range(0, len(documents), size)]
    for job_id in ids:
        final = list(client.watch_job(job_id))[-1]
        if final.state != 3:
            raise RuntimeError(f"job {job_id} ended {final.state}: {final.error}")
    return time.perf_counter() - started


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=4, help="jobs the corpus is split into")
    parser.add_argument("--callers", type=int, default=4, help="concurrent query callers")
    args = parser.parse_args()
    documents = corpus(args.documents)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        result = _measure(Path(tmp), stack, documents, args)
    print(json.dumps(result))


def _measure(
    workdir: Path, stack: contextlib.ExitStack, documents: list[dict[str, object]], args: argparse.Namespace
) -> dict[str, object]:
    redis = RedisServer(workdir)
    redis.start()
    stack.callback(redis.stop)
    embedder = ServiceProcess("embedder", {}, workdir)
    stack.callback(embedder.terminate)
    retriever = ServiceProcess("retriever", {"RAGMESH_RETRIEVER_URI": str(workdir / "milvus.db")}, workdir)
    stack.callback(retriever.terminate)
    embedder.wait_serving()
    retriever.wait_serving()
    extra = {"RAGMESH_ORCHESTRATOR_REDIS_URL": redis.url, "RAGMESH_ORCHESTRATOR_GENERATOR_ADDR": "127.0.0.1:1"}
    orchestrator = start_orchestrator(workdir, embedder, retriever, embedder, extra)
    stack.callback(orchestrator.terminate)
    baseline = in_process_rate([str(d["text"]) for d in documents])
    result: dict[str, object] = {"documents": len(documents), "in_process_texts_per_s": round(baseline, 1)}
    with RagmeshClient(orchestrator.address, timeout=3600) as client:
        client.ingest(documents[:200], "probe")  # what the probing queries search
        with Prober(orchestrator.address, "probe", args.callers) as idle:
            time.sleep(5)
        result["queries_idle"] = idle.summary()
        with Prober(orchestrator.address, "probe", args.callers) as busy:
            started = time.perf_counter()
            chunks = client.ingest(documents, "in_orchestrator").chunks_done
            seconds = time.perf_counter() - started
        result["in_orchestrator"] = {"documents_per_s": round(len(documents) / seconds, 1), "queries": busy.summary()}
        workers: list[ServiceProcess] = []
        for count in (1, 2):
            while len(workers) < count:
                workers.append(start_worker(workdir, embedder.address, retriever.address, redis.url))
                stack.callback(workers[-1].terminate)
            with Prober(orchestrator.address, "probe", args.callers) as busy:
                seconds = through_workers(client, documents, args.jobs, f"workers_{count}")
            result[f"workers_{count}"] = {
                "documents_per_s": round(len(documents) / seconds, 1),
                "chunks_per_s": round(chunks / seconds, 1),
                "vs_in_process": round(chunks / seconds / baseline, 3),
                "queries": busy.summary(),
            }
    return result


if __name__ == "__main__":
    main()
