"""Reranking of retrieved candidates: none, maximal marginal relevance, or a cross-encoder.

MMR needs the candidates' vectors (the retriever returns them on request) and drops
near-duplicates; a cross-encoder (the :class:`Reranker` port, implemented in
:mod:`services.orchestrator.adapters.models.cross_encoder`) scores (query, passage) pairs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)


@dataclass
class Candidate:
    """A retrieved chunk being ranked: its payload, vector and current score."""

    payload: Any
    text: str
    vector: npt.NDArray[np.float32] | None
    score: float


def mmr(query: npt.NDArray[np.float32], candidates: Sequence[Candidate], top_k: int, lambda_: float) -> list[Candidate]:
    """Pick ``top_k`` candidates maximising ``lambda*sim(q,d) - (1-lambda)*max sim(d, picked)``.

    Similarities are cosines; each picked candidate's score becomes its cosine to the query.
    """
    usable = [c for c in candidates if c.vector is not None and c.vector.size]
    if not usable:
        return list(candidates[:top_k])
    matrix = _unit(np.stack([c.vector for c in usable if c.vector is not None]))
    relevance = matrix @ _unit(query[np.newaxis, :])[0]
    pairwise = matrix @ matrix.T
    picked: list[int] = []
    closest = np.full(len(usable), -np.inf, dtype=np.float32)  # max similarity to anything picked
    while len(picked) < min(top_k, len(usable)):
        redundancy = np.where(np.isfinite(closest), closest, 0.0)
        objective = lambda_ * relevance - (1.0 - lambda_) * redundancy
        objective[picked] = -np.inf
        best = int(np.argmax(objective))
        picked.append(best)
        closest = np.maximum(closest, pairwise[best])
    chosen = []
    for index in picked:
        usable[index].score = float(relevance[index])
        chosen.append(usable[index])
    return chosen


def _unit(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


class Reranker(Protocol):
    """Scores candidates against the query and keeps the best (a cross-encoder model)."""

    async def rerank(self, query: str, candidates: Sequence[Candidate], top_k: int) -> list[Candidate]:
        """Candidates sorted by score, best ``top_k``."""
        ...

    def close(self) -> None:
        """Release the model's resources."""
        ...
