"""MMR and cross-encoder reranking (the session's tiny cross-encoder, see conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.orchestrator.adapters.models.cross_encoder import CrossEncoder
from services.orchestrator.core.query.rerank import Candidate, mmr


def _candidate(name: str, vector: list[float], score: float = 0.0) -> Candidate:
    return Candidate(payload=name, text=name, vector=np.asarray(vector, dtype=np.float32), score=score)


def test_mmr_drops_a_near_duplicate() -> None:
    query = np.asarray([1.0, 0.0, 0.0], dtype=np.float32)
    candidates = [
        _candidate("best", [0.99, 0.14, 0.0]),
        _candidate("copy-of-best", [0.98, 0.16, 0.01]),
        _candidate("different", [0.80, 0.0, 0.6]),
    ]
    picked = [c.payload for c in mmr(query, candidates, top_k=2, lambda_=0.5)]
    assert picked == ["best", "different"]


def test_mmr_with_lambda_one_is_pure_relevance() -> None:
    query = np.asarray([1.0, 0.0], dtype=np.float32)
    candidates = [_candidate("b", [0.6, 0.8]), _candidate("a", [1.0, 0.0]), _candidate("a2", [0.99, 0.01])]
    picked = mmr(query, candidates, top_k=3, lambda_=1.0)
    assert [c.payload for c in picked] == ["a", "a2", "b"]
    assert picked[0].score == pytest.approx(1.0)


def test_mmr_without_vectors_keeps_the_order() -> None:
    candidates = [Candidate("x", "x", None, 1.0), Candidate("y", "y", None, 0.5)]
    assert [c.payload for c in mmr(np.ones(3, dtype=np.float32), candidates, 1, 0.5)] == ["x"]


async def test_cross_encoder_orders_candidates_by_its_scores(tiny_cross_encoder_dir: Path) -> None:
    encoder = CrossEncoder(str(tiny_cross_encoder_dir))
    texts = [f"passage number {i} about topic {i}" for i in range(7)]
    scores = encoder.scores("which topic?", texts)
    assert len(scores) == 7 and len(set(scores)) > 1
    ranked = await encoder.rerank("which topic?", [Candidate(t, t, None, 0.0) for t in texts], top_k=3)
    expected = sorted(zip(scores, texts, strict=True), reverse=True)[:3]
    assert [c.payload for c in ranked] == [t for _, t in expected]
    assert [c.score for c in ranked] == pytest.approx([s for s, _ in expected])
