"""The capacity model on a sweep made from known demands: the fit finds them again, the
prediction matches the throughput they imply, and a plan's replicas follow by hand."""

from __future__ import annotations

import math

import pytest

from bench import capacity
from bench.capacity_plan import GPU_ANSWER_TOKENS_PER_S, HIT_CPU_SECONDS, Pod, Scenario, plan

TRUE = {
    "generator": capacity.Demand(0.6, 0.8),
    "embedder": capacity.Demand(0.02, 0.04),
    "client": capacity.Demand(0.01, 0),
}
LEVELS = (1, 2, 4, 8, 16)


def _sweep(r1: float = 1.2, cores: int = 2) -> dict[str, object]:
    """What bench.sweep writes, for a mesh whose parts cost exactly TRUE."""
    cpu = [
        {"concurrency": c, "generator_batch": min(c, 8), **{n: d.at(min(c, 8)) for n, d in TRUE.items()}}
        for c in LEVELS
    ]
    caps = {"generator": 1.0, "orchestrator": 1.0}  # what core_caps reads from the sweep below
    rows = [{"concurrency": c, "qps": capacity.predicted_qps(c, r1, TRUE, cores, caps)} for c in LEVELS]
    return {"cpu_per_query": {"mesh": cpu}, "mesh": rows, "machine": {"cores": cores},
            "settings": {"generator_threads": 1}}  # fmt: skip


def test_the_fit_finds_the_demands_a_sweep_was_made_of() -> None:
    fitted = capacity.fitted_demands(_sweep()["cpu_per_query"]["mesh"])  # type: ignore[index]
    assert set(fitted) == set(TRUE)  # the generator's batch is not a part
    for name, demand in TRUE.items():
        assert fitted[name].fixed == pytest.approx(demand.fixed, abs=1e-9)
        assert fitted[name].amortized == pytest.approx(demand.amortized, abs=1e-9)


def test_a_flat_or_falling_demand_is_not_extrapolated_below_zero() -> None:
    flat = capacity.fit_demand([1, 2, 4], [0.3, 0.3, 0.3])
    assert flat.fixed == pytest.approx(0.3) and flat.amortized == pytest.approx(0)
    rising = capacity.fit_demand([1, 2, 4], [0.1, 0.2, 0.3])  # noise that grows with sharing
    assert rising.amortized == 0 and rising.fixed == pytest.approx(0.2)


def test_the_check_compares_the_prediction_with_what_was_measured() -> None:
    consistent = capacity.check(_sweep())
    assert [row["error"] for row in consistent] == [0.0] * len(LEVELS)
    slower = _sweep()
    slower["mesh"][3]["qps"] /= 2  # type: ignore[index]  # c=8 measured at half what the demands allow
    assert capacity.check(slower)[3]["error"] == pytest.approx(1.0)


def test_a_part_that_can_use_fewer_cores_than_the_machine_is_its_own_bottleneck() -> None:
    # Two cores, but the generator runs one llama.cpp thread: it saturates first.
    capped = capacity.predicted_qps(16, 1.2, TRUE, 2, {"generator": 1.0})
    assert capped == pytest.approx(1 / TRUE["generator"].at(8))
    assert capped < capacity.predicted_qps(16, 1.2, TRUE, 2)
    assert capacity.core_caps({"machine": {"cores": 8}, "settings": {}}) == {"generator": 4.0, "orchestrator": 1.0}
    assert capacity.core_caps({"machine": {"cores": 8}, "settings": {"generator_threads": 16}})["generator"] == 8.0


def test_saturation_is_the_cores_over_the_demand() -> None:
    at_16 = capacity.predicted_qps(16, 1.2, TRUE, 2)
    assert at_16 == pytest.approx(2 / sum(d.at(8) for d in TRUE.values()))
    assert capacity.predicted_qps(1, 1.2, TRUE, 2) == pytest.approx(1 / 1.2)  # nothing queues alone


def test_a_plan_counts_replicas_from_each_pods_request_and_target() -> None:
    pods = [Pod("generator", 2.0, 0.75, 2, ("cpu 75%",)), Pod("orchestrator", 0.5, 0.7, 2, ("cpu 70%",))]
    demands = {"generator": TRUE["generator"], "orchestrator": capacity.Demand(0.01, 0.0)}
    rows = plan(Scenario("t", 100, 0.3, 64), demands, 8, 32, pods)
    generator = 0.6 + 0.8 / 8 * 64 / 32  # the decode share scaled to 64-token answers
    assert rows[0]["cpu_s_per_query"] == pytest.approx(generator)
    assert rows[0]["replicas"] == math.ceil(70 * generator / (2.0 * 0.75))
    orchestrator_cores = 70 * 0.01 + 30 * HIT_CPU_SECONDS["orchestrator"]  # cache hits cost it too
    assert rows[1]["replicas"] == math.ceil(orchestrator_cores / (0.5 * 0.7))
    gpu = plan(Scenario("g", 1000, 0.3, 64, gpu=True), demands, 8, 32, pods)[0]
    assert gpu["replicas"] == math.ceil(700 / (GPU_ANSWER_TOKENS_PER_S / 64))


def test_pods_are_read_from_the_manifests() -> None:
    generator = Pod.from_k8s("generator")
    assert generator.cpu_request == 2.0 and generator.utilization == 0.75 and generator.min_replicas == 2
    assert any("ragmesh_generator_sequences_waiting" in t for t in generator.triggers)
    assert Pod.from_k8s("envoy").cpu_request == 0.25
