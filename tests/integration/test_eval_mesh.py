"""``ragmesh eval`` on the shipped set, end to end through real services: MiniLM embedder,
milvus-lite retriever, SmolLM2 generator (also the judge, over gRPC) and the orchestrator; a
grid of chunkings and rerankers; and a secured mesh (TLS, a key, mTLS behind Envoy)."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

import pytest
from click.testing import CliRunner

from ragmesh.cli.main import cli
from ragmesh.eval import shipped
from ragmesh.eval.datasets import load
from ragmesh.eval.metrics import evaluate
from ragmesh.mesh.processes import ServiceProcess
from tests.support.mesh_cli import run_cli
from tests.support.secured_mesh import SecuredMesh
from tests.support.stack import client_of, unique_collection

pytestmark = pytest.mark.integration


def _random_recall_at_5(seeds: int = 50) -> float:
    """recall@5 of random rankings of the shipped corpus, averaged over seeds."""
    evalset = load(shipped.OUT)
    ids = [d.id for d in evalset.corpus]
    values = []
    for seed in range(seeds):
        rng = random.Random(seed)
        rankings = {q: rng.sample(ids, len(ids)) for q in evalset.judged_queries()}
        values.append(evaluate(evalset.qrels, rankings, k=10).aggregate["recall@5"])
    return statistics.fmean(values)


def test_the_shipped_set_runs_through_the_mesh_well_above_random(
    orchestrator: ServiceProcess, generator_service: ServiceProcess, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = ["--address", orchestrator.address, "eval", str(shipped.OUT), "-c", unique_collection(), "--out", str(out)]
    # One short answer, judged by the generator itself with a short reply limit: a 135M model rarely
    # writes valid JSON, so this mostly exercises the retry-then-unparsed path through gRPC.
    args += ["--answers", "1", "--max-new-tokens", "8", "--judge", generator_service.address]
    args += ["--judge-max-tokens", "8", "--concurrency", "4"]
    result = run_cli(*args, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "report.json").read_text())
    baseline = _random_recall_at_5()
    assert 0.2 < baseline < 0.5  # 1-2 relevant paragraphs among 15
    assert report["recall@5"] >= baseline + 0.4, (report["recall@5"], baseline)
    assert report["queries"] == 29 and report["documents"] == 15 and report["collection_chunks"] >= 15
    for name in ("ndcg@10", "mrr@10", "precision@5", "f1@5", "map@10", "hit_rate@10"):
        assert 0.0 <= report[name] <= 1.0
    assert len(report["per_query"]) == 29 and all("error" not in row for row in report["per_query"])
    # The sampled answer was generated, scored against its reference, cited and judged.
    assert report["answers_answered"] == 1.0 and "answers_token_f1" in report
    assert report["answers_cites_attributed"] >= report["answers_cites"]
    assert 0.0 <= report["answers_judge_unparsed"] <= 1.0
    (answer,) = report["variants"]["default"]["answers"]
    assert answer["answer"] and answer["judge"]["attempts"] in (1, 2)
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "| recall@5 |" in (
        out / "report.md"
    ).read_text()
    # compare in-process (click's runner): no second interpreter start.
    compared = CliRunner().invoke(cli, ["eval", "compare", str(out), str(out), "--out", str(tmp_path / "both.png")])
    assert compared.exit_code == 0, compared.output
    assert (tmp_path / "both.png").is_file() and "| recall@5 |" in compared.output and "run#2" in compared.output


def test_a_grid_of_chunkings_and_rerankers_is_compared_query_by_query(
    orchestrator: ServiceProcess, tmp_path: Path
) -> None:
    out, base = tmp_path / "grid", unique_collection()
    args = ["--address", orchestrator.address, "eval", str(shipped.OUT), "-c", base, "--out", str(out)]
    args += ["--grid", "chunk_tokens=64,128", "--grid", "rerank=none,mmr", "--retrieval-only", "--concurrency", "4"]
    result = run_cli(*args, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    grid = json.loads((out / "grid.json").read_text())
    labels = [cell["label"] for cell in grid["cells"]]
    assert labels == [f"chunk_tokens={c} rerank={r}" for c in (64, 128) for r in ("none", "mmr")]
    assert grid["baseline"] == labels[0] and grid["headline"] == ["ndcg@10", "recall@10", "mrr@10"]
    # One collection per chunking, filled through the mesh with that chunking: smaller chunks, more of them.
    with client_of(orchestrator) as client:
        chunks = {c.name: c.chunks for c in client.collections()}
    assert chunks[f"{base}_c64_o8"] > chunks[f"{base}_c128_o16"] >= 15
    for cell in grid["cells"]:
        values = cell["per_query"]["ndcg@10"]
        assert len(values) == 29 and all(0.0 <= v <= 1.0 for v in values.values())
        paired = cell["paired"]["ndcg@10"]
        assert paired["n"] == 29
        assert paired["mean_difference"] == pytest.approx(paired["mean"] - paired["baseline_mean"])
        assert paired["mean"] == pytest.approx(cell["metrics"]["ndcg@10"])
    # MMR reorders the chunks it is given: some query ranks its documents differently.
    none, mmr = (grid["cells"][i]["per_query"]["ndcg@10"] for i in (0, 1))
    rankings = [grid["cells"][i]["per_query"]["mrr@10"] for i in (0, 1)]
    assert none != mmr or rankings[0] != rankings[1]
    assert "| chunk_tokens=64 rerank=none (baseline) |" in (out / "grid.md").read_text()
    assert (out / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Wilcoxon p (Holm)" in result.stdout


def test_eval_reaches_a_secured_mesh_and_finds_its_judge(secure_mesh: SecuredMesh, tmp_path: Path) -> None:
    """Over TLS with a key (the global options), the judge found in mesh.json: the internal
    listener, called over mTLS with the certificate mesh.json names."""
    out = tmp_path / "tls"
    tls = ["--address", secure_mesh.address, "--tls-ca", str(secure_mesh.ca), "--api-key", secure_mesh.api_key]
    args = ["eval", str(shipped.OUT), "-c", unique_collection(), "--out", str(out), "--concurrency", "4"]
    args += ["--mesh-state", str(secure_mesh.mesh.plan.log_dir), "--answers", "1", "--max-new-tokens", "4"]
    result = run_cli(*tls, *args, "--judge-max-tokens", "8", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["judge"] == secure_mesh.mesh.internal_address
    assert report["queries"] == 29 and report["answers_answered"] == 1.0
    (answer,) = report["variants"]["default"]["answers"]
    # The judge answered (a tiny random model: its reply is rarely a verdict, but it is a reply).
    assert not answer["judge"]["failed"] and report["answers_judge_failed"] == 0.0
    cleartext = run_cli("--address", secure_mesh.address, "--timeout", "10", *args, timeout=120)
    assert cleartext.returncode == 3 and "UNAVAILABLE" in cleartext.stderr, cleartext.stderr
