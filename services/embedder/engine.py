"""The embedder's domain logic: request checks, prefixes, token limits and batching.

The servicer turns protobuf into calls on :class:`Embedder`; the model itself sits
behind :class:`~services.embedder.model.EncoderBackend`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
from prometheus_client import Gauge, Histogram

from services.common.batching import BatchLimits, DynamicBatcher
from services.common.errors import InvalidArgument
from services.common.offload import INLINE_CHARS, off_loop_if
from services.embedder.backend import EncoderBackend, TokenSpans, Vectors

BATCH_SIZE = Histogram(
    "ragmesh_embedder_batch_size", "Texts per model batch", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)
)
QUEUED_TEXTS = Gauge("ragmesh_embedder_queued_texts", "Texts waiting for a model batch (an autoscaling signal)")
#: Requests with more texts than this are tokenized off the event loop.


class Kind(Enum):
    """Whether a text is a search query or a passage."""

    QUERY = "query"
    DOCUMENT = "document"


@dataclass(frozen=True)
class RequestLimits:
    """Bounds on one request."""

    max_texts: int
    max_request_chars: int


@dataclass(frozen=True)
class Embeddings:
    """Result of one Embed call."""

    vectors: Vectors
    token_counts: list[int]
    truncated: list[int]


class Embedder:
    """Validates requests, applies prefixes and limits, and batches texts for the model."""

    def __init__(
        self,
        backend: EncoderBackend,
        limits: RequestLimits,
        batching: BatchLimits,
        prefixes: dict[Kind, str] | None = None,
    ) -> None:
        self.backend = backend
        self.limits = limits
        self.prefixes = prefixes or {}
        self.batcher: DynamicBatcher[list[int], Vectors] = DynamicBatcher(
            self._run_batch, batching, cost=len, on_batch=BATCH_SIZE.observe
        )
        QUEUED_TEXTS.set_function(lambda: self.batcher.queued)

    def _run_batch(self, batch: list[list[int]]) -> list[Vectors]:
        return list(self.backend.embed_ids(batch))

    async def start(self) -> None:
        """Start batching and warm the model up with one text."""
        self.batcher.start()
        await self.embed(["warm up"], Kind.QUERY, truncate=False)

    async def close(self) -> None:
        """Stop batching."""
        await self.batcher.close()

    async def embed(self, texts: Sequence[str], kind: Kind, truncate: bool) -> Embeddings:
        """Embed ``texts``; too-long texts are rejected unless ``truncate`` is set."""
        self._check_texts(texts)
        prefix = self.prefixes.get(kind, "")
        prepared = [prefix + text for text in texts] if prefix else list(texts)
        ids = await off_loop_if(_chars(prepared) > INLINE_CHARS, lambda: self.backend.encode_ids(prepared))
        special = self.backend.info.special_tokens
        limit = self.backend.info.max_tokens
        too_long = [i for i, seq in enumerate(ids) if len(seq) > limit]
        if too_long and not truncate:
            shown = ", ".join(f"texts[{i}] has {len(ids[i]) - special} tokens" for i in too_long[:5])
            raise InvalidArgument(
                f"{len(too_long)} text(s) exceed the model's limit of {limit - special} tokens ({shown}); "
                "split them or set truncate=true"
            )
        counts = [len(seq) - special for seq in ids]
        batch = [self.backend.truncate(seq) for seq in ids] if too_long else ids
        vectors = await self.batcher.submit(batch)
        return Embeddings(np.stack(vectors), counts, too_long)

    async def tokenize(self, texts: Sequence[str], with_offsets: bool) -> list[TokenSpans]:
        """Count each text's content tokens, with character spans if asked."""
        self._check_texts(texts)
        batch = list(texts)
        return await off_loop_if(_chars(batch) > INLINE_CHARS, lambda: self.backend.spans(batch, with_offsets))

    def _check_texts(self, texts: Sequence[str]) -> None:
        if not texts:
            raise InvalidArgument("texts is empty; send at least one text")
        if len(texts) > self.limits.max_texts:
            raise InvalidArgument(f"{len(texts)} texts in one request; the limit is {self.limits.max_texts}")
        empty = [i for i, text in enumerate(texts) if not text.strip()]
        if empty:
            raise InvalidArgument(f"texts{empty[:10]} are empty or whitespace; every text needs content")
        chars = _chars(texts)
        if chars > self.limits.max_request_chars:
            raise InvalidArgument(f"request holds {chars} characters; the limit is {self.limits.max_request_chars}")


def _chars(texts: Sequence[str]) -> int:
    return sum(len(text) for text in texts)
