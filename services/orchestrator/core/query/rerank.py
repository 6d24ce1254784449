"""Reranking of retrieved candidates: none, maximal marginal relevance, or a cross-encoder.

MMR needs the candidates' vectors (the retriever returns them on request) and drops
near-duplicates; the cross-encoder scores (query, passage) pairs with any Hugging Face
sequence-classification model directory, in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

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


class CrossEncoder:
    """A Hugging Face sequence-classification model scoring (query, passage) pairs."""

    def __init__(self, path: str, max_tokens: int = 512, batch_size: int = 32) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(path).eval()
        self.max_tokens = min(max_tokens, getattr(self.tokenizer, "model_max_length", max_tokens))
        self.batch_size = batch_size
        # One thread owns tokenizer and model: a Rust tokenizer used from two threads at
        # once fails with "Already borrowed", and concurrent forward passes would only
        # fight over the same cores.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cross-encoder")
        log.info("loaded cross-encoder from %s", path)

    def scores(self, query: str, passages: Sequence[str]) -> list[float]:
        """One relevance score per passage (higher is better)."""
        results: list[float] = []
        for first in range(0, len(passages), self.batch_size):
            batch = list(passages[first : first + self.batch_size])
            encoded = self.tokenizer(
                [query] * len(batch),
                batch,
                padding=True,
                truncation="only_second",
                max_length=self.max_tokens,
                return_tensors="pt",
            )
            with self._torch.inference_mode():
                logits = self.model(**encoded).logits
            # One logit: a relevance score. Several: the last class is "relevant".
            column = logits[:, 0] if logits.shape[1] == 1 else logits[:, -1] - logits[:, 0]
            results.extend(float(v) for v in column)
        return results

    async def rerank(self, query: str, candidates: Sequence[Candidate], top_k: int) -> list[Candidate]:
        """Candidates sorted by cross-encoder score, best ``top_k``."""
        passages = [c.text for c in candidates]
        scores = await asyncio.get_running_loop().run_in_executor(self._thread, self.scores, query, passages)
        for candidate, score in zip(candidates, scores, strict=True):
            candidate.score = score
        return sorted(candidates, key=lambda c: c.score, reverse=True)[:top_k]

    def close(self) -> None:
        """Stop the scoring thread (after the queries using it ended)."""
        self._thread.shutdown(wait=False, cancel_futures=True)
