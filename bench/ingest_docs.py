"""Ingestion of real files through the services: documents/s, pages/s, where the time goes,
and re-ingest of the unchanged corpus.

Generates the mixed corpus of ``bench.doc_corpus`` (PDF, DOCX, HTML, Markdown; 300 files by
default), starts a real embedder, retriever (fresh milvus-lite) and orchestrator as
processes, ingests the folder the way ``ragmesh ingest`` does, then ingests it again
unchanged. The share of time per stage (parse, chunk, embed, store) comes from the
orchestrator's ``ragmesh_orchestrator_ingest_stage_seconds`` counters. The last line is
one JSON object.

    python -m bench.ingest_docs [--files 300] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.doc_corpus import generate
from ragmesh.client import RagmeshClient, files
from ragmesh.mesh.processes import ServiceProcess, free_port
from tests.support.metrics import scrape, value

STAGES = ("parse", "chunk", "embed", "store")


def _stages(port: int) -> dict[str, float]:
    samples = scrape(port)
    return {stage: value(samples, "ragmesh_orchestrator_ingest_stage_seconds_total", stage=stage) for stage in STAGES}


def run(corpus: Path, workdir: Path, workers: int) -> dict[str, object]:
    """Start the services, ingest ``corpus`` twice and return the figures."""
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    embedder = ServiceProcess("embedder", {}, logs)
    retriever = ServiceProcess("retriever", {"RAGMESH_RETRIEVER_URI": str(workdir / "milvus.db")}, logs)
    started: list[ServiceProcess] = [embedder, retriever]
    try:
        embedder.wait_serving(timeout=300)
        retriever.wait_serving(timeout=300)
        env = {
            "RAGMESH_ORCHESTRATOR_EMBEDDER_ADDR": embedder.address,
            "RAGMESH_ORCHESTRATOR_RETRIEVER_ADDR": retriever.address,
            # Ingestion never calls the generator: nothing listens there.
            "RAGMESH_ORCHESTRATOR_GENERATOR_ADDR": f"127.0.0.1:{free_port()}",
            "RAGMESH_ORCHESTRATOR_PARSE_WORKERS": str(workers),
            "RAGMESH_ORCHESTRATOR_HTTP_ADDR": "off",
        }
        orchestrator = ServiceProcess("orchestrator", env, logs)
        started.append(orchestrator)
        orchestrator.wait_serving(timeout=120)
        documents = files.load([corpus], exclude=["facts.jsonl"], raw_text=True).documents
        with RagmeshClient(orchestrator.address, timeout=1800) as client:
            began = time.perf_counter()
            first = client.ingest(documents, "bench_docs", batch_size=32)
            first_seconds = time.perf_counter() - began
            stages = _stages(orchestrator.metrics_port)
            began = time.perf_counter()
            again = client.ingest(documents, "bench_docs", batch_size=32)
            again_seconds = time.perf_counter() - began
    finally:
        for service in reversed(started):
            service.terminate()
    staged = sum(stages.values()) or 1.0
    return {
        "files": len(documents),
        "rejected": len(first.errors),
        "chunks": first.chunks_done,
        "pages": first.pages_done,
        "first_seconds": round(first_seconds, 2),
        "documents_per_s": round(len(documents) / first_seconds, 1),
        "pages_per_s": round(first.pages_done / first_seconds, 1),
        "share": {stage: round(seconds / staged, 3) for stage, seconds in stages.items()},
        "reingest_seconds": round(again_seconds, 2),
        "reingest_unchanged": again.documents_unchanged,
        "reingest_speedup": round(first_seconds / max(again_seconds, 1e-6), 1),
        "parse_workers": workers,
    }


def main() -> None:
    """Generate the corpus, run the benchmark, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300, help="documents to generate (default 300)")
    parser.add_argument("--workers", type=int, default=2, help="parser processes of the orchestrator (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ragmesh-ingest-docs-") as tmp:
        workdir = Path(tmp)
        generate(workdir / "corpus", args.files)
        result = run(workdir / "corpus", workdir, args.workers)
    for key, figure in result.items():
        print(f"{key:>20}: {figure}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
