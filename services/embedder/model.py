"""The transformers implementation of the encoder backend (imports torch)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

from services.embedder.backend import EncoderInfo, TokenSpans, Vectors

log = logging.getLogger(__name__)


class TransformersEncoder:
    """A Hugging Face encoder with mean or CLS pooling, run with torch on the CPU."""

    def __init__(self, path: str, model_name: str, pooling: str, normalize: bool, max_tokens: int) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.fast = self.tokenizer.backend_tokenizer  # the underlying tokenizers.Tokenizer
        self.fast.no_truncation()  # limits are checked and reported by the engine, not cut silently
        self.fast.no_padding()
        self.model = AutoModel.from_pretrained(path).eval()
        self.pooling = _pooling_of(Path(path)) if pooling == "auto" else pooling
        self.normalize = normalize
        probe = self.tokenizer("a")["input_ids"]
        self.special_tokens = len(probe) - len(self.tokenizer("a", add_special_tokens=False)["input_ids"])
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.info = EncoderInfo(
            model_name=model_name,
            dimension=int(self.model.config.hidden_size),
            max_tokens=max_tokens or _model_max_tokens(Path(path), self.tokenizer, self.model),
            special_tokens=self.special_tokens,
            normalized=normalize,
            pooling=self.pooling,
        )
        log.info("loaded encoder %s: %s", model_name, self.info)

    def encode_ids(self, texts: list[str]) -> list[list[int]]:
        # The Rust tokenizer directly: half the per-call cost of the transformers wrapper,
        # which matters on the event loop under many single-text calls.
        return [encoding.ids for encoding in self.fast.encode_batch(texts, add_special_tokens=True)]

    def spans(self, texts: list[str], with_offsets: bool) -> list[TokenSpans]:
        encoded = self.tokenizer(texts, add_special_tokens=False, truncation=False, return_offsets_mapping=with_offsets)
        if not with_offsets:
            return [TokenSpans(len(ids), [], []) for ids in encoded["input_ids"]]
        return [
            TokenSpans(len(offsets), [start for start, _ in offsets], [end for _, end in offsets])
            for offsets in encoded["offset_mapping"]
        ]

    def truncate(self, ids: list[int]) -> list[int]:
        limit = self.info.max_tokens
        if len(ids) <= limit:
            return ids
        closing = ids[-1:] if self.special_tokens >= 2 else []
        return ids[: limit - len(closing)] + closing

    def embed_ids(self, batch: list[list[int]]) -> Vectors:
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[row, : len(ids)] = 1
        with torch.inference_mode():
            states = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            if self.pooling == "cls":
                pooled = states[:, 0]
            else:
                weights = mask.unsqueeze(-1).to(states.dtype)
                pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.float().numpy()


def _pooling_of(path: Path) -> str:
    """Pooling from a sentence-transformers ``1_Pooling/config.json``; mean otherwise."""
    config = path / "1_Pooling" / "config.json"
    if config.is_file() and json.loads(config.read_text()).get("pooling_mode_cls_token"):
        return "cls"
    return "mean"


def _model_max_tokens(path: Path, tokenizer: object, model: torch.nn.Module) -> int:
    """sentence-transformers' max_seq_length, else the smaller of tokenizer and model limits."""
    st_config = path / "sentence_bert_config.json"
    if st_config.is_file():
        value = json.loads(st_config.read_text()).get("max_seq_length")
        if value:
            return int(value)
    limits = [getattr(model.config, "max_position_embeddings", 512), getattr(tokenizer, "model_max_length", 512)]
    return int(min(limit for limit in limits if isinstance(limit, int) and limit > 0))
