"""Reports: aggregate metrics at the top level, a column per variant, PNG charts, compare."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ragmesh.cli.main import cli
from ragmesh.eval import report
from ragmesh.eval.runner import VariantResult

PNG = b"\x89PNG\r\n\x1a\n"


def _result(variant: str, ndcg: float) -> VariantResult:
    metrics = {"ndcg@10": ndcg, "recall@5": 0.9, "recall@1": 0.5, "mrr@10": 0.7, "f1@5": 0.3, "hit_rate@10": 1.0}
    rows = [{"query_id": "q1", "ranking": ["d1"], "ndcg@10": ndcg}]
    return VariantResult(variant, metrics, rows, answer_metrics={"token_f1": 0.25} if variant == "a" else {})


def _write(out: Path) -> dict[str, object]:
    extra = {"dataset": "toy", "collection": "c", "collection_chunks": 3, "documents": 2, "queries": 1}
    built = report.build([_result("a", 0.8), _result("b", 0.6)], {"k": 10}, extra | {"wall_seconds": 1.0})
    report.write(built, out)
    return built


def test_report_files_hold_every_variant(tmp_path: Path) -> None:
    built = _write(tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "report.json").read_text())
    assert saved["ndcg@10"] == 0.8 and saved["answers_token_f1"] == 0.25  # the first variant at the top level
    assert set(saved["variants"]) == {"a", "b"} and saved["variants"]["b"]["metrics"]["ndcg@10"] == 0.6
    assert saved["per_query"] == built["per_query"] and saved["settings"] == {"k": 10}
    markdown = (tmp_path / "run" / "report.md").read_text()
    assert "| metric | a | b |" in markdown and "| ndcg@10 | 0.8000 | 0.6000 |" in markdown and "## Answers" in markdown
    assert (tmp_path / "run" / "chart.png").read_bytes()[:8] == PNG


def test_compare_charts_runs_and_their_variants_side_by_side(tmp_path: Path) -> None:
    _write(tmp_path / "one")
    _write(tmp_path / "two")
    runs = report.compare([tmp_path / "one", tmp_path / "two"], tmp_path / "cmp.png")
    assert list(runs) == ["one:a", "one:b", "two:a", "two:b"]
    assert (tmp_path / "cmp.png").read_bytes()[:8] == PNG
    result = CliRunner().invoke(cli, ["eval", "compare", str(tmp_path / "one"), str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no report.json" in result.output


def test_cli_names_a_malformed_data_set_before_calling_the_mesh(tmp_path: Path) -> None:
    (tmp_path / "set.jsonl").write_text('{"query": "a", "relevant": ["d1"]}\n')
    (tmp_path / "corpus.jsonl").write_text('{"id": "d1", "text": "one"}\n{"id": 1.5}\n')
    args = ["--address", "127.0.0.1:1", "eval", str(tmp_path / "set.jsonl"), "--corpus", str(tmp_path / "corpus.jsonl")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "corpus.jsonl:2" in result.output
