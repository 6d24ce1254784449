"""A/B experiments through a real orchestrator on real components: variants are assigned
by caller id, a real latency difference is told apart, feedback joins its query, and an
experiment on a missing collection stops the orchestrator at start."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragmesh.mesh.processes import ServiceProcess
from tests.support.mesh_cli import run_cli
from tests.support.stack import client_of, start_orchestrator

pytestmark = pytest.mark.integration

EXPERIMENT = """
[[experiments]]
name = "depth"
collections = ["{collection}"]

  [[experiments.variants]]
  name = "narrow"
  ratio = 0.5
  top_k = 1
  max_new_tokens = 1
  context = "chunks"

  [[experiments.variants]]
  name = "wide"
  ratio = 0.5
  top_k = 5
  candidates = 50
  rerank = "mmr"
  search_mode = "hybrid"
  max_new_tokens = 24
  context = "chunks"
"""


#: Answered queries: the wide variant prefills five sources and decodes up to 24 tokens where
#: the narrow one reads one source and decodes one — hundreds of milliseconds apart, far above
#: what a machine loaded by other jobs adds to either. (Retrieval-only variants differing in
#: top_k, candidates and MMR were ~5 ms apart: a difference such load drowns.)
QUERIES = 40


def _documents(count: int) -> list[dict[str, str]]:
    topics = ["Envoy routes gRPC", "Milvus stores vectors", "Redis caches answers", "The generator streams tokens"]
    return [{"id": f"d{i}", "text": f"{topics[i % 4]} (note {i}): " + "detail " * 30} for i in range(count)]


@pytest.fixture(scope="module")
def experiment_setup(
    *,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    embedder_service: ServiceProcess,
    retriever_service: ServiceProcess,
    generator_service: ServiceProcess,
    orchestrator: ServiceProcess,
) -> Iterator[tuple[ServiceProcess, str]]:
    collection = f"t_{uuid.uuid4().hex[:10]}"
    with client_of(orchestrator) as client:
        client.ingest(_documents(60), collection)  # more chunks than the wide variant's 50 candidates
    path = tmp_path_factory.mktemp("experiments") / "experiments.toml"
    path.write_text(EXPERIMENT.format(collection=collection))
    extra = {"RAGMESH_ORCHESTRATOR_EXPERIMENTS_FILE": str(path)}
    service = start_orchestrator(log_dir, embedder_service, retriever_service, generator_service, extra)
    yield service, collection
    service.terminate()


def test_variants_are_assigned_and_a_real_latency_difference_is_significant(
    experiment_setup: tuple[ServiceProcess, str],
) -> None:
    service, collection = experiment_setup
    seen: dict[str, int] = {}
    trace_id = ""
    for caller in range(QUERIES):
        with client_of(service, caller_id=f"user-{caller}") as client:
            answer = client.query("How does Envoy route calls?", collection, bypass_cache=True)
        seen[answer.variant] = seen.get(answer.variant, 0) + 1
        assert len(answer.sources) == (1 if answer.variant == "narrow" else 5)
        trace_id = answer.trace_id
    assert set(seen) == {"narrow", "wide"} and min(seen.values()) >= QUERIES // 4  # split by caller id
    with client_of(service) as client:
        experiment, variant = client.feedback(trace_id, 4.0, {"d1": 2})
        report = client.experiment_report("depth", "latency_ms", chart=True)
        ratings = client.experiment_report("depth", "rating")
    assert experiment == "depth" and variant in seen
    assert report.records == QUERIES and [v.variant for v in report.variants] == ["narrow", "wide"]
    comparison = report.comparisons[0]
    assert comparison.variant == "wide" and comparison.difference > 0
    # The wide variant does far more work (five sources to prefill, up to 24 tokens to decode):
    # its latency is higher at the report's own alpha even on a machine other processes load.
    assert comparison.significant and comparison.welch_p < report.alpha, comparison
    assert report.chart_png.startswith(b"\x89PNG")
    assert sum(v.count for v in ratings.variants) == 1  # the feedback joined its query


def test_the_same_caller_always_gets_the_same_variant(experiment_setup: tuple[ServiceProcess, str]) -> None:
    service, collection = experiment_setup
    with client_of(service, caller_id="steady-caller") as client:
        variants = {client.query("q", collection, retrieval_only=True).variant for _ in range(5)}
        forced = client.query("q", collection, retrieval_only=True, variant="wide")
    assert len(variants) == 1 and forced.variant == "wide"


def test_an_experiment_on_a_missing_collection_stops_the_start(
    *,
    log_dir: Path,
    tmp_path: Path,
    embedder_service: ServiceProcess,
    retriever_service: ServiceProcess,
    generator_service: ServiceProcess,
) -> None:
    path = tmp_path / "experiments.toml"
    path.write_text(EXPERIMENT.format(collection="no_such_collection"))
    extra = {"RAGMESH_ORCHESTRATOR_EXPERIMENTS_FILE": str(path)}
    with pytest.raises(RuntimeError, match="no_such_collection"):
        start_orchestrator(log_dir, embedder_service, retriever_service, generator_service, extra)


CHUNKING = """
[[experiments]]
name = "chunks"
enabled = false  # enabled once its collections are filled
collections = ["{base}"]

  [[experiments.variants]]
  name = "control"
  ratio = 0.5

  [[experiments.variants]]
  name = "small"
  ratio = 0.5
  collection = "{base}_c48"
  chunk_tokens = 48
  overlap_tokens = 8
"""


def test_ingest_fills_every_chunking_variants_collection(orchestrator: ServiceProcess, tmp_path: Path) -> None:
    base = f"t_{uuid.uuid4().hex[:10]}"
    path = tmp_path / "experiments.toml"
    path.write_text(CHUNKING.format(base=base))
    docs = str(Path(__file__).resolve().parents[2] / "corpus" / "docs")
    done = run_cli(
        "--address", orchestrator.address, "ingest", docs, "-c", base, "--experiment", "chunks",
        "--experiments-file", str(path),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    with client_of(orchestrator) as client:
        chunks = {c.name: c.chunks for c in client.collections()}
    assert chunks[base] > 0 and chunks[f"{base}_c48"] > chunks[base]  # smaller chunks, more of them
