"""The transformers implementation of the causal-LM backend: one padded, growing batch.

Step-level (continuous) batching on a plain ``DynamicCache``: every row's keys and values
sit in one tensor per layer, left-padded to the longest row, with a 2-D attention mask
that hides the padding and per-row position ids. A new row is prefilled on its own (with
the other newcomers of the same step) and concatenated to the batch after padding the
shorter side; a finished row is cut out with ``index_select`` and padding columns that no
row needs any more are trimmed. Everything here runs on the scheduler's decode thread.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DynamicCache,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from services.generator.decoding.lm import ChatTurn, ModelInfo, Sampling
from services.generator.decoding.sampling import RowSampler, pick_tokens

log = logging.getLogger(__name__)


class TransformersLM:
    """A Hugging Face causal LM and tokenizer decoding one continuous batch on the CPU."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, info: ModelInfo) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        # The decode thread gets its own tokenizer: a Rust tokenizer shared by two threads
        # can fail with "Already borrowed" when one of them changes its settings.
        self._detokenizer = copy.deepcopy(tokenizer)
        self.info = info
        self.vocab_size = int(model.config.vocab_size)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(info.eos_token_ids, default=0)
        self.pad_id = int(pad)
        self._cache: DynamicCache | None = None
        self._mask = torch.zeros((0, 0), dtype=torch.long)
        self._positions = torch.zeros((0, 1), dtype=torch.long)
        self._last = torch.zeros((0, 1), dtype=torch.long)
        self._samplers: list[RowSampler] = []

    # Tokenizer side ------------------------------------------------------------------

    def render_chat(self, turns: list[ChatTurn]) -> list[int]:
        messages = [{"role": turn.role, "content": turn.content} for turn in turns]
        rendered = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        # The template writes the special tokens itself, so none are added here.
        return list(self.tokenizer(str(rendered), add_special_tokens=False)["input_ids"])

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def decode(self, ids: list[int]) -> str:
        return str(self._detokenizer.decode(ids, skip_special_tokens=True))

    # Batch side ----------------------------------------------------------------------

    @property
    def batch_size(self) -> int:
        return len(self._samplers)

    def join(self, prompts: list[list[int]], sampling: list[Sampling]) -> list[int]:
        width = max(len(prompt) for prompt in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[row, width - len(prompt) :] = 1
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        with torch.inference_mode():
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
        samplers = [RowSampler(s, self.vocab_size, p) for s, p in zip(sampling, prompts, strict=True)]
        tokens = pick_tokens(out.logits[:, -1], samplers)
        lengths = torch.tensor([[len(prompt)] for prompt in prompts], dtype=torch.long)
        self._append(cache, mask, lengths, torch.tensor(tokens, dtype=torch.long).unsqueeze(1), samplers)
        return tokens

    def step(self) -> list[int]:
        if self._cache is None:
            return []
        rows = self.batch_size
        self._mask = torch.cat([self._mask, torch.ones((rows, 1), dtype=torch.long)], dim=1)
        with torch.inference_mode():
            out = self.model(
                input_ids=self._last,
                attention_mask=self._mask,
                position_ids=self._positions,
                past_key_values=self._cache,
                use_cache=True,
            )
        tokens = pick_tokens(out.logits[:, -1], self._samplers)
        self._positions += 1
        self._last = torch.tensor(tokens, dtype=torch.long).unsqueeze(1)
        return tokens

    def leave(self, rows: list[int]) -> None:
        if not rows or self._cache is None:
            return
        gone = set(rows)
        keep = [row for row in range(self.batch_size) if row not in gone]
        if not keep:
            self.reset()
            return
        index = torch.tensor(keep, dtype=torch.long)
        self._samplers = [self._samplers[row] for row in keep]
        self._mask = self._mask.index_select(0, index)
        self._positions = self._positions.index_select(0, index)
        self._last = self._last.index_select(0, index)
        # Columns that are padding in every remaining row cost attention time for nothing.
        first = int((self._mask.sum(dim=0) > 0).nonzero()[0])
        self._mask = self._mask[:, first:]
        for layer in _layers(self._cache):
            layer.keys = layer.keys.index_select(0, index)[:, :, first:].contiguous()
            layer.values = layer.values.index_select(0, index)[:, :, first:].contiguous()

    def _append(
        self,
        cache: DynamicCache,
        mask: torch.Tensor,
        positions: torch.Tensor,
        last: torch.Tensor,
        samplers: list[RowSampler],
    ) -> None:
        """Concatenate freshly prefilled rows to the batch, left-padding the shorter side."""
        if self._cache is None:
            self._cache, self._mask, self._positions, self._last = cache, mask, positions, last
            self._samplers = samplers
            return
        old, new = self._mask.shape[1], mask.shape[1]
        width = max(old, new)
        self._mask = torch.cat([_left_pad(self._mask, width), _left_pad(mask, width)], dim=0)
        for mine, theirs in zip(_layers(self._cache), _layers(cache), strict=True):
            mine.keys = torch.cat([_left_pad(mine.keys, width, 2), _left_pad(theirs.keys, width, 2)], dim=0)
            mine.values = torch.cat([_left_pad(mine.values, width, 2), _left_pad(theirs.values, width, 2)], dim=0)
        self._positions = torch.cat([self._positions, positions], dim=0)
        self._last = torch.cat([self._last, last], dim=0)
        self._samplers = self._samplers + samplers

    def reset(self) -> None:
        """Drop every row (after a failed step the batch state cannot be trusted)."""
        self._cache = None
        self._mask = torch.zeros((0, 0), dtype=torch.long)
        self._positions = torch.zeros((0, 1), dtype=torch.long)
        self._last = torch.zeros((0, 1), dtype=torch.long)
        self._samplers = []


def _layers(cache: DynamicCache) -> list[Any]:
    """The cache's layers; each holds ``keys`` and ``values`` of shape (batch, heads, seq, dim)."""
    return list(cache.layers)


def _left_pad(tensor: torch.Tensor, width: int, dim: int = 1) -> torch.Tensor:
    """``tensor`` with zeros prepended along ``dim`` up to ``width``."""
    missing = width - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def load_transformers_lm(
    directory: Path, model_name: str, dtype: str, context_length: int, chat_template: str | None
) -> TransformersLM:
    """Load a Hugging Face causal-LM directory as a backend."""
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=getattr(torch, dtype))
    if chat_template:
        tokenizer.chat_template = chat_template
    if not tokenizer.chat_template:
        raise ValueError(f"{directory} has no chat template; set RAGMESH_GENERATOR_CHAT_TEMPLATE")
    window = context_length or int(getattr(model.config, "max_position_embeddings", 0) or 2048)
    info = ModelInfo(model_name, window, frozenset(_eos_ids(model.generation_config, tokenizer)))
    return TransformersLM(model, tokenizer, info)


def _eos_ids(generation: GenerationConfig | None, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """End-of-sequence ids from the generation config and the tokenizer."""
    ids: set[int] = set()
    configured = getattr(generation, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif isinstance(configured, list):
        ids.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids
