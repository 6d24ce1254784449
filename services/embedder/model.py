"""The transformers implementation of the encoder backend (imports torch)."""

from __future__ import annotations

import logging

import torch
from transformers import AutoModel

from services.embedder.backend import Vectors
from services.embedder.tokens import EncoderTokens

log = logging.getLogger(__name__)


class TransformersEncoder(EncoderTokens):
    """A Hugging Face encoder with mean or CLS pooling, run with torch on the CPU."""

    def __init__(self, path: str, model_name: str, pooling: str, normalize: bool, max_tokens: int) -> None:
        super().__init__(path, model_name, pooling, normalize, max_tokens)
        self.model = AutoModel.from_pretrained(path).eval()
        log.info("loaded encoder %s (torch): %s", model_name, self.info)

    def embed_ids(self, batch: list[list[int]]) -> Vectors:
        """One vector per id sequence, shape (len(batch), dimension)."""
        ids, mask = (torch.from_numpy(array) for array in self.padded(batch))
        with torch.inference_mode():
            states = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
            pooled = pool(states, mask, self.pooling, self.normalize)
        return pooled.float().numpy()


def pool(states: torch.Tensor, mask: torch.Tensor, pooling: str, normalize: bool) -> torch.Tensor:
    """Token states (batch, tokens, hidden) to one vector per row: CLS or masked mean.

    The ONNX export traces this same function, so both backends pool alike.
    """
    if pooling == "cls":
        pooled = states[:, 0]
    else:
        weights = mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    if normalize:
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
    return pooled
