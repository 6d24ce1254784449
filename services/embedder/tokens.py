"""Tokenization and model facts shared by every encoder backend (no torch needed).

The torch and ONNX backends differ only in how they run the network; token ids, token
counts, truncation, Tokenize spans, padding, pooling choice and limits come from here, so
the two backends agree on all of them by construction.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig

from services.embedder.backend import EncoderInfo, TokenSpans

TokenArray = npt.NDArray[np.int64]


class EncoderTokens:
    """A Hugging Face model directory's tokenizer and the facts callers need about it."""

    def __init__(self, path: str, model_name: str, pooling: str, normalize: bool, max_tokens: int) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.fast = self.tokenizer.backend_tokenizer  # the underlying tokenizers.Tokenizer
        self.fast.no_truncation()  # limits are checked and reported by the engine, not cut silently
        self.fast.no_padding()
        model_config = AutoConfig.from_pretrained(path)
        self.pooling = pooling_of(Path(path)) if pooling == "auto" else pooling
        self.normalize = normalize
        probe = self.tokenizer("a")["input_ids"]
        self.special_tokens = len(probe) - len(self.tokenizer("a", add_special_tokens=False)["input_ids"])
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.info = EncoderInfo(
            model_name=model_name,
            dimension=int(model_config.hidden_size),
            max_tokens=max_tokens or model_max_tokens(Path(path), self.tokenizer, model_config),
            special_tokens=self.special_tokens,
            normalized=normalize,
            pooling=self.pooling,
        )

    def encode_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text with special tokens, not truncated."""
        # The Rust tokenizer directly: half the per-call cost of the transformers wrapper,
        # which matters on the event loop under many single-text calls.
        return [encoding.ids for encoding in self.fast.encode_batch(texts, add_special_tokens=True)]

    def spans(self, texts: list[str], with_offsets: bool) -> list[TokenSpans]:
        """Content tokens of each text (no special tokens), with character spans if asked."""
        encoded = self.tokenizer(texts, add_special_tokens=False, truncation=False, return_offsets_mapping=with_offsets)
        if not with_offsets:
            return [TokenSpans(len(ids), [], []) for ids in encoded["input_ids"]]
        return [
            TokenSpans(len(offsets), [start for start, _ in offsets], [end for _, end in offsets])
            for offsets in encoded["offset_mapping"]
        ]

    def truncate(self, ids: list[int]) -> list[int]:
        """``ids`` cut to ``info.max_tokens``, keeping the closing special token."""
        limit = self.info.max_tokens
        if len(ids) <= limit:
            return ids
        closing = ids[-1:] if self.special_tokens >= 2 else []
        return ids[: limit - len(closing)] + closing

    def padded(self, batch: list[list[int]]) -> tuple[TokenArray, TokenArray]:
        """``batch`` right-padded to its longest sequence: (input ids, attention mask)."""
        width = max(len(ids) for ids in batch)
        input_ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        return input_ids, mask


def pooling_of(path: Path) -> str:
    """Pooling from a sentence-transformers ``1_Pooling/config.json``; mean otherwise."""
    config = path / "1_Pooling" / "config.json"
    if config.is_file() and json.loads(config.read_text()).get("pooling_mode_cls_token"):
        return "cls"
    return "mean"


def model_max_tokens(path: Path, tokenizer: object, config: PretrainedConfig) -> int:
    """sentence-transformers' max_seq_length, else the smaller of tokenizer and model limits."""
    st_config = path / "sentence_bert_config.json"
    if st_config.is_file():
        value = json.loads(st_config.read_text()).get("max_seq_length")
        if value:
            return int(value)
    limits = [getattr(config, "max_position_embeddings", 512), getattr(tokenizer, "model_max_length", 512)]
    return int(min(limit for limit in limits if isinstance(limit, int) and limit > 0))
