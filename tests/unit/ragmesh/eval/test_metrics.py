"""Retrieval metrics on a toy run whose values were worked out by hand."""

from __future__ import annotations

import math

import pytest

from ragmesh.eval.metrics import document_ranking, evaluate

# Query a: relevant d1 (grade 2) and d3 (grade 1); ranking d2, d1, d4, d3 (two hits, ranks 2 and 4).
# Query b: relevant d5; ranking d5 first.
# Query c: relevant d9; nothing retrieved (must count as zero, not be left out).
QRELS = {"a": {"d1": 2, "d3": 1, "d7": 0}, "b": {"d5": 1}, "c": {"d9": 1}, "unjudged": {"d1": 0}}
RANKINGS = {"a": ["d2", "d1", "d4", "d3"], "b": ["d5", "d6"], "c": []}


def test_toy_run_matches_hand_computed_values() -> None:
    scores = evaluate(QRELS, RANKINGS, k=5)
    per_query, mean = scores.per_query, scores.aggregate
    assert set(per_query) == {"a", "b", "c"}  # the query without a relevant document is not scored
    # Query a by hand.
    a = per_query["a"]
    assert a["precision@5"] == pytest.approx(2 / 5)
    assert a["recall@5"] == pytest.approx(1.0)
    assert a["recall@1"] == pytest.approx(0.0)
    assert a["f1@5"] == pytest.approx(2 * (2 / 4) * 1.0 / (2 / 4 + 1.0))  # set F of the 4 retrieved: P 2/4, R 1
    assert a["mrr@5"] == pytest.approx(1 / 2)
    assert a["map@5"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    dcg = 2 / math.log2(3) + 1 / math.log2(5)  # linear gains: grade 2 at rank 2, grade 1 at rank 4
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    assert a["ndcg@5"] == pytest.approx(dcg / ideal)
    assert a["hit_rate@1"] == 0.0 and a["hit_rate@5"] == 1.0
    # Query b is perfect at every cutoff except precision@5 (one of five) and F1@5 (P 1/2 of two retrieved).
    b = per_query["b"]
    assert (b["ndcg@5"], b["mrr@5"], b["map@5"], b["recall@1"], b["precision@1"]) == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert b["precision@5"] == pytest.approx(1 / 5)
    assert b["f1@5"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    # Query c retrieved nothing: zero everywhere.
    assert all(value == 0.0 for value in per_query["c"].values())
    # Means over the three judged queries.
    assert mean["recall@5"] == pytest.approx((1 + 1 + 0) / 3)
    assert mean["mrr@5"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert mean["hit_rate@5"] == pytest.approx(2 / 3)
    assert mean["ndcg@5"] == pytest.approx((dcg / ideal + 1) / 3)
    assert mean["f1@1"] == pytest.approx((0 + 1 + 0) / 3)


def test_report_names_cover_the_cutoffs_of_k() -> None:
    names = set(evaluate(QRELS, RANKINGS, k=10).aggregate)
    for wanted in ("ndcg@10", "recall@5", "mrr@10", "precision@5", "f1@5", "map@10", "hit_rate@10", "recall@1"):
        assert wanted in names


def test_chunks_map_to_documents_at_their_best_rank() -> None:
    assert document_ranking(["d2", "d1", "d2", "d3", "d1"]) == ["d2", "d1", "d3"]
    # d1's second chunk does not push d3 down: d3 is third, so recall@2 misses it.
    scores = evaluate({"q": {"d3": 1}}, {"q": document_ranking(["d1", "d1", "d2", "d3"])}, k=2)
    assert scores.per_query["q"]["recall@2"] == 0.0 and scores.per_query["q"]["mrr@2"] == 0.0


def test_nothing_to_evaluate_is_an_error() -> None:
    with pytest.raises(ValueError, match="no query has a relevant document"):
        evaluate({"q": {"d": 0}}, {"q": ["d"]}, k=5)
