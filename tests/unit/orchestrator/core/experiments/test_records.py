"""The in-process record store and the Experiments facade: feedback joined by trace id,
unknown trace ids refused, the deque bounded, metrics labelled from config only, and the
report with its PNG chart."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from prometheus_client import REGISTRY

from ragmesh.vocabulary.experiments.parsing import parse_experiments
from services.common.errors import InvalidArgument, NotFound
from services.orchestrator.core.experiments.manager import Experiments, QueryOutcome
from services.orchestrator.core.experiments.records import MemoryRecordStore, QueryRecord

CONFIG = {
    "experiments": [
        {
            "name": "recs",
            "variants": [{"name": "ctl", "ratio": 0.5}, {"name": "fast", "ratio": 0.5, "top_k": 1}],
        }
    ]
}


def _record(trace: str, variant: str = "ctl", ms: float = 10.0) -> QueryRecord:
    return QueryRecord("recs", variant, trace, 1.0, ms, ttft_ms=ms / 2, completion_tokens=3)


async def test_feedback_joins_its_query_and_unknown_traces_are_not_found() -> None:
    store = MemoryRecordStore(max_records=100, feedback_ttl_seconds=60)
    await store.record_query(_record("a1"))
    await store.record_query(_record("b2", "fast"))
    assert await store.record_feedback("b2", 4.5, {"doc1": 3, "doc2": 0}) == ("recs", "fast")
    records = await store.read("recs")
    assert [r.trace_id for r in records] == ["a1", "b2"]
    assert records[0].feedback is None
    assert records[1].feedback is not None and records[1].feedback.rating == 4.5
    assert records[1].feedback.labels == {"doc1": 3, "doc2": 0}
    with pytest.raises(NotFound, match="no experiment query with trace id cc"):
        await store.record_feedback("cc", 3, {})


@pytest.mark.parametrize(
    ("trace", "rating", "labels", "phrase"),
    [
        ("not-hex", 3.0, {}, "trace_id"),
        ("a1", 0.0, {}, "rating must be between 1 and 5"),
        ("a1", float("nan"), {}, "rating"),
        ("a1", 3.0, {"doc": 4}, "grade of 'doc'"),
        ("a1", 3.0, {"": 1}, "label ids"),
        ("a1", 3.0, {f"d{i}": 1 for i in range(101)}, "limit is 100"),
    ],
)
async def test_bad_feedback_is_an_invalid_argument(
    trace: str, rating: float, labels: dict[str, int], phrase: str
) -> None:
    store = MemoryRecordStore(max_records=10, feedback_ttl_seconds=60)
    await store.record_query(_record("a1"))
    with pytest.raises(InvalidArgument, match=phrase):
        await store.record_feedback(trace, rating, labels)


async def test_the_store_keeps_the_newest_records_only() -> None:
    store = MemoryRecordStore(max_records=10, feedback_ttl_seconds=60)
    for i in range(25):
        await store.record_query(_record(f"{i:x}", ms=float(i)))
    kept = await store.read("recs")
    assert [r.latency_ms for r in kept] == [float(i) for i in range(15, 25)]
    assert await store.read("other") == []


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_experiments_record_label_metrics_from_config_only_and_report_with_a_chart() -> None:
    experiments = Experiments(parse_experiments(CONFIG), MemoryRecordStore(100, 60))
    before = _sample("ragmesh_experiment_queries_total", experiment="recs", variant="fast", outcome="ok")
    unknown_before = _sample("ragmesh_experiment_unknown_label_total")
    for i in range(40):
        assignment = experiments.assign("any", f"caller-{i}", f"{i:032x}")
        assert assignment is not None
        slow = assignment.variant == "ctl"
        experiments.record_soon(assignment, QueryOutcome(f"{i:032x}", 100.0 + 50 * slow + i % 7, ttft_ms=20.0))
    await experiments.flush()
    fast = sum(1 for r in await experiments.store.read("recs") if r.variant == "fast")
    assert 0 < fast < 40
    after = _sample("ragmesh_experiment_queries_total", experiment="recs", variant="fast", outcome="ok")
    assert after - before == fast
    experiments.metrics.observe_query(QueryRecord("recs", "not_configured", "t", 0.0, 1.0))
    assert _sample("ragmesh_experiment_unknown_label_total") == unknown_before + 1
    assert _sample("ragmesh_experiment_queries_total", experiment="recs", variant="not_configured", outcome="ok") == 0

    report, png = await experiments.report("recs", "latency_ms", chart=True)
    assert report.comparisons[0].significant and report.comparisons[0].difference is not None
    assert report.comparisons[0].difference < 0  # "fast" is 50 ms faster than the control
    assert png is not None and png.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(png)) as image:
        assert image.width >= 400 and image.height >= 400
    with pytest.raises(NotFound, match="declared: recs"):
        await experiments.report("nope")
