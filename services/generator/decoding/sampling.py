"""Choosing the next token of every row of a batch from its logits (imports torch).

Greedy rows without a repetition penalty, the common case for RAG answers, are picked
with one batched argmax. Other rows are processed one by one with their own random
generator, so a seeded request gives the same answer whatever else shares its batch.
"""

from __future__ import annotations

import torch

from services.generator.decoding.lm import Sampling


class RowSampler:
    """Sampling state of one row: its parameters, random generator and seen tokens."""

    def __init__(self, sampling: Sampling, vocab_size: int, prompt: list[int]) -> None:
        self.sampling = sampling
        self.generator: torch.Generator | None = None
        if not sampling.greedy:
            self.generator = torch.Generator().manual_seed(sampling.seed)
        self.seen: torch.Tensor | None = None
        if sampling.repetition_penalty != 1.0:
            self.seen = torch.zeros(vocab_size, dtype=torch.bool)
            self.seen[torch.tensor([t for t in prompt if 0 <= t < vocab_size], dtype=torch.long)] = True

    @property
    def plain(self) -> bool:
        """Whether argmax of the raw logits is this row's choice."""
        return self.generator is None and self.seen is None

    def pick(self, logits: torch.Tensor) -> int:
        """The next token from one row's logits (1-D, float)."""
        s = self.sampling
        if self.seen is not None:
            # As in transformers' RepetitionPenaltyLogitsProcessor: make seen tokens less likely.
            penalized = torch.where(logits < 0, logits * s.repetition_penalty, logits / s.repetition_penalty)
            logits = torch.where(self.seen, penalized, logits)
        if self.generator is None:
            return int(logits.argmax())
        logits = logits / s.temperature
        if 0 < s.top_k < logits.shape[-1]:
            kth = torch.topk(logits, s.top_k).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if s.top_p < 1.0:
            logits = _top_p(logits, s.top_p)
        probs = torch.softmax(logits, dim=-1)
        return int(torch.multinomial(probs, 1, generator=self.generator))

    def record(self, token: int) -> None:
        """Remember a generated token for the repetition penalty."""
        if self.seen is not None and 0 <= token < self.seen.shape[0]:
            self.seen[token] = True


def _top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability reaches ``top_p``."""
    ordered, order = torch.sort(logits, descending=True)
    probs = torch.softmax(ordered, dim=-1)
    # A token is dropped when the tokens before it already reach top_p (the first stays).
    drop = (torch.cumsum(probs, dim=-1) - probs) > top_p
    ordered = ordered.masked_fill(drop, float("-inf"))
    return torch.empty_like(logits).scatter_(-1, order, ordered)


def pick_tokens(logits: torch.Tensor, samplers: list[RowSampler]) -> list[int]:
    """Next token of each row of ``logits`` (shape batch x vocab)."""
    logits = logits.float()
    tokens: list[int] = logits.argmax(dim=-1).tolist()
    for row, sampler in enumerate(samplers):
        if not sampler.plain:
            tokens[row] = sampler.pick(logits[row])
            sampler.record(tokens[row])
    return tokens
