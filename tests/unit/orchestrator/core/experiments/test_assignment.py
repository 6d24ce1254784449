"""Assignment: the same in separate processes (with different hash seeds), proportional to
the ratios (chi-square on 10,000 ids), overridable by name, and anonymous traffic split by
trace id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

from ragmesh.vocabulary.experiments.model import Experiment
from ragmesh.vocabulary.experiments.parsing import parse_experiments
from services.common.errors import InvalidArgument
from services.orchestrator.core.experiments.assignment import assign, assign_variant, bucket

ROOT = Path(__file__).resolve().parents[5]
CONFIG: dict[str, Any] = {
    "experiments": [
        {
            "name": "split",
            "collections": ["docs"],
            "variants": [
                {"name": "a", "ratio": 0.5},
                {"name": "b", "ratio": 0.3, "top_k": 2},
                {"name": "c", "ratio": 0.2, "rerank": "mmr"},
            ],
        }
    ]
}
# Run in a fresh interpreter: prints the variant of caller-0 ... caller-999, one per line.
CHILD = """
import json, sys
from services.orchestrator.core.experiments.assignment import assign
from ragmesh.vocabulary.experiments.parsing import parse_experiments
config = parse_experiments(json.loads(sys.argv[1]))
print("\\n".join(assign(config, "docs", f"caller-{i}").variant for i in range(1000)))
"""


def _experiment() -> Experiment:
    experiment = parse_experiments(CONFIG).get("split")
    assert experiment is not None
    return experiment


def _in_child(hash_seed: str) -> list[str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'gen'}"}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(CONFIG)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.split()


def test_two_processes_with_different_hash_seeds_agree_on_1000_callers() -> None:
    first, second = _in_child("1"), _in_child("2")
    here = [assign_variant(_experiment(), f"caller-{i}").variant for i in range(1000)]
    assert len(first) == 1000 and first == second == here
    assert set(here) == {"a", "b", "c"}


def test_proportions_on_10000_callers_pass_a_chi_square_test() -> None:
    experiment = _experiment()
    counts = Counter(assign_variant(experiment, f"user-{i}").variant for i in range(10_000))
    observed = [counts[v.name] for v in experiment.variants]
    expected = [v.ratio * 10_000 for v in experiment.variants]
    result = stats.chisquare(observed, expected)
    assert result.pvalue > 0.001, (observed, result)
    # The test itself can fail: a 0.6/0.2/0.2 split is rejected on the same counts.
    assert stats.chisquare(observed, [6000, 2000, 2000]).pvalue < 0.001


def test_buckets_are_uniform_and_depend_on_the_experiment_name() -> None:
    points = [bucket("split", f"u{i}") for i in range(2000)]
    assert all(0.0 <= p < 1.0 for p in points)
    assert stats.kstest(points, "uniform").pvalue > 0.001
    assert [bucket("other", f"u{i}") for i in range(50)] != points[:50]


def test_a_forced_variant_wins_and_an_unknown_one_names_the_valid_ones() -> None:
    experiment = _experiment()
    forced = assign_variant(experiment, "caller-1", requested="c")
    assert (forced.variant, forced.basis, forced.settings.rerank) == ("c", "forced", "mmr")
    with pytest.raises(InvalidArgument, match=r"no variant 'z'; valid variants: a, b, c"):
        assign_variant(experiment, "caller-1", requested="z")


def test_anonymous_traffic_is_split_by_trace_id() -> None:
    experiment = _experiment()
    by_trace = {assign_variant(experiment, "", trace_id=f"{i:032x}").variant for i in range(200)}
    assert by_trace == {"a", "b", "c"}
    same = assign_variant(experiment, "", trace_id="ab" * 16)
    assert same == assign_variant(experiment, "", trace_id="ab" * 16) and same.basis == "trace"
    assert assign_variant(experiment, "", "").basis == "random"


def test_queries_no_experiment_covers_get_none() -> None:
    config = parse_experiments(CONFIG)
    assert assign(config, "elsewhere", "caller-1") is None
    with pytest.raises(InvalidArgument, match="no enabled experiment covers collection 'elsewhere'"):
        assign(config, "elsewhere", "caller-1", requested="a")
    assigned = assign(config, "docs", "caller-1")
    assert assigned is not None and assigned.experiment == "split" and assigned.basis == "caller"
