"""The paired comparison of ``--grid`` against hand-checked figures, and its report: tables,
grid.json, the heat map."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from ragmesh.eval import grid_report
from ragmesh.eval.grid import cells, parse_axes
from ragmesh.eval.paired import adjust, compare, holm
from ragmesh.eval.runner import VariantResult

BASE = {"q1": 0.0, "q2": 0.5, "q3": 1.0, "q4": 0.25, "q5": 0.75, "q6": 0.5}
BETTER = {"q1": 0.5, "q2": 0.75, "q3": 1.0, "q4": 0.5, "q5": 1.0, "q6": 0.75, "extra": 1.0}


def test_the_tests_use_the_per_query_differences() -> None:
    found = compare(BASE, BETTER, seed=3)
    differences = np.array([BETTER[q] - BASE[q] for q in sorted(BASE)])
    assert found.n == 6 and found.n_nonzero == 5  # "extra" has no baseline value: not a pair
    assert found.mean_difference == pytest.approx(differences.mean())
    paired = stats.ttest_rel([BETTER[q] for q in sorted(BASE)], [BASE[q] for q in sorted(BASE)])
    assert found.t_p == pytest.approx(paired.pvalue)
    assert found.wilcoxon_p == pytest.approx(stats.wilcoxon(differences).pvalue)
    assert found.ci_low is not None and found.ci_high is not None
    assert found.ci_low <= found.mean_difference <= found.ci_high
    assert compare(BASE, BETTER, seed=3) == found, "seeded: the same interval again"


def test_identical_cells_show_no_difference() -> None:
    same = compare(BASE, BASE)
    assert (same.mean_difference, same.t_p, same.wilcoxon_p, same.ci_low, same.ci_high) == (0.0, 1.0, 1.0, 0.0, 0.0)


def test_holm_adjusts_step_down_and_keeps_missing_values() -> None:
    assert holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])
    adjusted = adjust([compare(BASE, BETTER), compare(BASE, BASE)])
    assert adjusted[0].wilcoxon_p is not None
    assert adjusted[0].wilcoxon_p_holm == pytest.approx(min(1.0, 2 * adjusted[0].wilcoxon_p))


def _result(scores: dict[str, float], f1: dict[str, float]) -> VariantResult:
    per_query = [{"query_id": q, "ndcg@10": v, "recall@10": v} for q, v in scores.items()]
    answers = [
        {"query_id": q, "token_f1": v, "prompt_tokens": 400 * v, "judge": {"scores": {"accuracy": 3}}}
        for q, v in f1.items()
    ]
    metrics = {"ndcg@10": sum(scores.values()) / len(scores), "recall@10": 0.5}
    return VariantResult("default", metrics, per_query, answers)


def test_the_report_tables_and_heat_map(tmp_path: Path) -> None:
    axes = parse_axes(["chunk_tokens=128,256", "rerank=none,mmr"])
    grid = cells(axes, "eval_set")
    shifted = [{q: min(1.0, v + step) for q, v in BASE.items()} for step in (0.0, 0.1, 0.0, 0.3)]
    f1 = {"q1": 0.5, "q2": 0.25}
    results = [grid_report.CellResult(c, _result(s, f1)) for c, s in zip(grid, shifted, strict=True)]
    # What a prompt cost is compared query by query too (a context budget is judged on both).
    assert grid_report.compared_metrics(results) == [
        "ndcg@10", "recall@10", "token_f1", "prompt_tokens", "judge_accuracy"
    ]  # fmt: skip
    extra = {"dataset": "toy", "documents": 3, "queries": 6, "wall_seconds": 1.0}
    report = grid_report.build(results, axes, ["ndcg@10", "token_f1"], {"seed": 0, "k": 10}, extra)
    grid_report.write(report, tmp_path)
    saved = json.loads((tmp_path / "grid.json").read_text())
    assert saved["baseline"] == "chunk_tokens=128 rerank=none" and len(saved["cells"]) == 4
    fourth = saved["cells"][3]["paired"]["ndcg@10"]
    assert fourth["mean_difference"] > 0.2 and fourth["wilcoxon_p_holm"] >= fourth["wilcoxon_p"]
    assert saved["cells"][3]["per_query"]["ndcg@10"]["q1"] == pytest.approx(0.3)
    text = (tmp_path / "grid.md").read_text()
    assert "## ndcg@10" in text and "| chunk_tokens=128 rerank=none (baseline) |" in text and "heatmap.png" in text
    assert (tmp_path / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
