"""The encoder interface the embedder engine depends on (no torch needed to import it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class EncoderInfo:
    """What callers need to know about an encoder."""

    model_name: str
    dimension: int
    max_tokens: int
    special_tokens: int
    normalized: bool
    pooling: str


@dataclass(frozen=True)
class TokenSpans:
    """Content tokens of one text with their character spans (empty when not asked for)."""

    count: int
    starts: list[int]
    ends: list[int]


class EncoderBackend(Protocol):
    """An encoder: tokenizes texts and embeds token-id sequences."""

    info: EncoderInfo

    def encode_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text with special tokens, not truncated."""
        ...

    def spans(self, texts: list[str], with_offsets: bool) -> list[TokenSpans]:
        """Content tokens of each text (no special tokens)."""
        ...

    def truncate(self, ids: list[int]) -> list[int]:
        """``ids`` cut to ``info.max_tokens``, keeping the closing special token."""
        ...

    def embed_ids(self, batch: list[list[int]]) -> Vectors:
        """One vector per id sequence, shape (len(batch), dimension)."""
        ...
