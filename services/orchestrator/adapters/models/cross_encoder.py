"""A cross-encoder reranker (the core's :class:`Reranker` port): any Hugging Face
sequence-classification model directory scoring (query, passage) pairs, in a thread of its
own so the event loop keeps serving."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from services.orchestrator.core.query.rerank import Candidate

log = logging.getLogger(__name__)


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
