"""The llama.cpp implementation of the causal-LM backend (the optional ``llamacpp`` extra).

It plugs in below the same :class:`~services.generator.decoding.scheduler.Scheduler` as the
transformers backend, so admission, cancellation within a step, deadlines, text deltas,
stop sequences and metrics are the same code for both. What differs is the batch: one
llama.cpp context holds up to ``max_batch_size`` sequences (``n_seq_max``), each row owns
a sequence id and its slice of the KV cache, and every step decodes one token of every
row in a single ``llama_decode`` call (batched decoding). A row that leaves drops its
sequence from the cache (``llama_memory_seq_rm``) and frees its id.

Next tokens are chosen from the logits with the same samplers as the transformers
backend (:mod:`services.generator.decoding.sampling`), so a seeded request samples the same way
whichever rows share its step. Everything except tokenizing runs on the decode thread.
"""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
import torch
from llama_cpp._internals import LlamaBatch, LlamaContext, LlamaModel
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from ragmesh.vocabulary import Role
from services.generator.backends.llamacpp_prefix import KnownHeads, PrefixCache, head_length
from services.generator.decoding.lm import ChatTurn, ModelInfo, Sampling
from services.generator.decoding.sampling import RowSampler, pick_tokens

log = logging.getLogger(__name__)
#: Per-sequence context when neither the config nor a smaller training window says less:
#: the KV cache is allocated up front for every sequence slot (about 23 KB per token for
#: SmolLM2-135M), so the model's full 8k window times eight slots would cost 1.5 GB.
DEFAULT_SEQUENCE_CONTEXT = 2048
#: Tokens submitted to one ``llama_decode`` call; longer prefills are split.
_BATCH_TOKENS = 512


class _Row:
    """One sequence in the context: its id, its length in the cache and its sampler."""

    __slots__ = ("last", "position", "sampler", "seq_id")

    def __init__(self, seq_id: int, position: int, sampler: RowSampler, last: int) -> None:
        self.seq_id = seq_id
        self.position = position
        self.sampler = sampler
        self.last = last


class GGUFTokenizer:
    """The vocabulary and chat template of a GGUF model (thread-safe: read-only)."""

    def __init__(self, gguf: Path | LlamaModel, chat_template: str | None = None) -> None:
        if isinstance(gguf, Path):
            _quiet_logs()
            params = llama_cpp.llama_model_default_params()
            params.vocab_only = True
            gguf = LlamaModel(path_model=str(gguf), params=params, verbose=False)
        self.model = gguf
        template = chat_template or gguf.metadata().get("tokenizer.chat_template", "")
        if not template:
            raise ValueError(f"{gguf.path_model} has no tokenizer.chat_template; set RAGMESH_GENERATOR_CHAT_TEMPLATE")
        self._formatter = Jinja2ChatFormatter(
            template,
            eos_token=_token_text(gguf, gguf.token_eos()),
            bos_token=_token_text(gguf, gguf.token_bos()),
            add_generation_prompt=True,
        )

    def render_chat(self, turns: list[ChatTurn]) -> list[int]:
        """Token ids of the conversation rendered with the GGUF's chat template."""
        messages: list[Any] = [{"role": turn.role, "content": turn.content} for turn in turns]
        prompt = self._formatter(messages=messages).prompt
        # The template writes the special tokens as text; parse them back as special tokens.
        return list(self.model.tokenize(prompt.encode(), add_bos=False, special=True))

    def head_of(self, turns: list[ChatTurn], rendered: list[int]) -> list[int]:
        """The head of ``rendered`` (``turns``' tokens): what the template writes before the
        content of the first message that is not the system's."""
        first = next((i for i, turn in enumerate(turns) if turn.role is not Role.SYSTEM), None)
        if first is None:
            return []
        emptied = [*turns[:first], ChatTurn(turns[first].role, ""), *turns[first + 1 :]]
        return rendered[: head_length(rendered, self.render_chat(emptied))]

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` as plain text (no special tokens)."""
        return list(self.model.tokenize(text.encode(), add_bos=False, special=False))

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens of each text, no special tokens added."""
        return [len(self.model.tokenize(text.encode(), add_bos=False, special=False)) for text in texts]

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids``, special tokens skipped; a split UTF-8 character shows as U+FFFD."""
        return self.model.detokenize(ids, special=False).decode("utf-8", errors="replace")


class LlamaCppLM:
    """A GGUF model in one llama.cpp context decoding several sequences per step."""

    def __init__(self, tokenizer: GGUFTokenizer, context: LlamaContext, info: ModelInfo) -> None:
        self.tokenizer = tokenizer
        self.model = tokenizer.model
        self.context = context
        self.info = info
        self.n_vocab = self.model.n_vocab()
        # The last sequence holds the prompts' common head (see llamacpp_prefix); the rest are rows.
        self.slots = llama_cpp.llama_n_seq_max(context.ctx) - 1
        self._free_ids = list(range(self.slots))
        self.prefix = PrefixCache(context.memory, self.slots, self._fill)
        self.heads = KnownHeads()
        self._rows: list[_Row] = []
        self._batch = LlamaBatch(n_tokens=max(_BATCH_TOKENS, self.slots), embd=0, n_seq_max=1, verbose=False)
        # Tokenizing happens on the event loop while the decode thread decodes: llama.cpp's
        # vocabulary is read-only after load, so the two need no lock.
        self.count_tokens = tokenizer.count_tokens
        self.encode = tokenizer.encode
        self.decode = tokenizer.decode

    def render_chat(self, turns: list[ChatTurn]) -> list[int]:
        """The conversation's tokens; their head is remembered for the prefill (llamacpp_prefix)."""
        rendered = self.tokenizer.render_chat(turns)
        self.heads.add(self.tokenizer.head_of(turns, rendered))
        return rendered

    # Batch side (the decode thread) ------------------------------------------------------

    @property
    def batch_size(self) -> int:
        return len(self._rows)

    def join(self, prompts: list[list[int]], sampling: list[Sampling]) -> list[int]:
        if len(prompts) > len(self._free_ids):
            raise RuntimeError(f"{len(prompts)} new rows but only {len(self._free_ids)} free sequence slots")
        rows = [
            _Row(self._free_ids.pop(0), len(p), RowSampler(s, self.n_vocab, p), 0)
            for p, s in zip(prompts, sampling, strict=True)
        ]
        # Each prompt starts from its head's cached KV and is prefilled in calls of its own (at
        # most _BATCH_TOKENS tokens each): with several sequences in one call llama.cpp splits
        # and shapes the work by who is in it, and a greedy answer must not change with the
        # company it keeps.
        try:
            for row, prompt in zip(rows, prompts, strict=True):
                self._prefill(row, prompt, self.prefix.reuse(prompt, self.heads.length_in(prompt), row.seq_id))
        except Exception:
            for row in rows:
                self._drop(row)
            raise
        self._rows.extend(rows)
        return [row.last for row in rows]

    def _prefill(self, row: _Row, prompt: list[int], start: int) -> None:
        """Decode ``prompt[start:]`` into the row's sequence; pick its first token from the
        logits of the last call (the next call overwrites them)."""
        batch = self._batch.batch
        for first in range(start, len(prompt), _BATCH_TOKENS):
            batch.n_tokens = 0
            for offset in range(first, min(first + _BATCH_TOKENS, len(prompt))):
                _put(batch, prompt[offset], offset, row.seq_id, offset == len(prompt) - 1)
            self._decode()
        row.last = pick_tokens(self._logits(1), [row.sampler])[0]

    def step(self) -> list[int]:
        if not self._rows:
            return []
        batch = self._batch.batch
        batch.n_tokens = 0
        for row in self._rows:
            _put(batch, row.last, row.position, row.seq_id, True)
        self._decode()
        tokens = pick_tokens(self._logits(len(self._rows)), [row.sampler for row in self._rows])
        for row, token in zip(self._rows, tokens, strict=True):
            row.position += 1
            row.last = token
        return tokens

    def leave(self, rows: list[int]) -> None:
        gone = set(rows)
        for index in sorted(gone):
            self._drop(self._rows[index])
        self._rows = [row for index, row in enumerate(self._rows) if index not in gone]

    def reset(self) -> None:
        if self.context.memory is not None:
            llama_cpp.llama_memory_clear(self.context.memory, True)
        self.prefix.clear()
        self._rows = []
        self._free_ids = list(range(self.slots))

    def close(self) -> None:
        """Free the context and the model (the decode thread has stopped)."""
        self._batch.close()
        self.context.close()
        self.model.close()

    def _drop(self, row: _Row) -> None:
        llama_cpp.llama_memory_seq_rm(self.context.memory, row.seq_id, -1, -1)
        self._free_ids.append(row.seq_id)

    def _fill(self, tokens: list[int], seq_id: int) -> None:
        """Decode ``tokens`` into sequence ``seq_id`` from position 0, without outputs."""
        batch = self._batch.batch
        for first in range(0, len(tokens), _BATCH_TOKENS):
            batch.n_tokens = 0
            for offset in range(first, min(first + _BATCH_TOKENS, len(tokens))):
                _put(batch, tokens[offset], offset, seq_id, False)
            self._decode()

    def _decode(self) -> None:
        code = llama_cpp.llama_decode(self.context.ctx, self._batch.batch)
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code} (1: no room in the KV cache)")

    def _logits(self, outputs: int) -> torch.Tensor:
        """The last decode call's logits, one row per output, without a copy."""
        pointer = llama_cpp.llama_get_logits(self.context.ctx)
        return torch.from_numpy(np.ctypeslib.as_array(pointer, shape=(outputs, self.n_vocab)))


def _put(batch: Any, token: int, position: int, seq_id: int, logits: bool) -> None:
    """Append one token of sequence ``seq_id`` at ``position`` to a llama_batch."""
    i = batch.n_tokens
    batch.token[i] = token
    batch.pos[i] = position
    batch.n_seq_id[i] = 1
    batch.seq_id[i][0] = seq_id
    batch.logits[i] = logits
    batch.n_tokens = i + 1


def _token_text(model: LlamaModel, token: int) -> str:
    return "" if token < 0 else model.token_get_text(token)


def load_llamacpp_lm(
    gguf: Path,
    *,
    model_name: str,
    context_length: int,
    slots: int,
    threads: int,
    chat_template: str | None,
    batch_threads: int = 0,
) -> LlamaCppLM:
    """Load ``gguf`` into a context of ``slots`` sequences of ``context_length`` tokens each
    (0: the model's training window, at most :data:`DEFAULT_SEQUENCE_CONTEXT`). Decode steps
    run on ``threads`` threads, prompts (and OpenBLAS's sgemm) on ``batch_threads``."""
    _quiet_logs()
    model_params = llama_cpp.llama_model_default_params()
    model_params.n_gpu_layers = 0
    model = LlamaModel(path_model=str(gguf), params=model_params, verbose=False)
    tokenizer = GGUFTokenizer(model, chat_template)
    window = context_length or min(model.n_ctx_train(), DEFAULT_SEQUENCE_CONTEXT)
    params = llama_cpp.llama_context_default_params()
    params.n_seq_max = slots + 1  # and one holding the prompts' common head
    params.kv_unified = False  # each sequence gets its own ``window`` tokens of cache
    params.n_ctx = window * (slots + 1)
    params.n_batch = params.n_ubatch = max(_BATCH_TOKENS, slots)
    params.n_threads = threads or default_threads()
    # Prompts go through OpenBLAS, which runs its own threads beside ggml's spinning ones:
    # more prompt threads than half the cores was slower here (a 700-token prefill on 2 cores:
    # 467 tokens/s with 1 thread, 261 with 2; bench/engines.py), so the default matches decode.
    params.n_threads_batch = batch_threads or params.n_threads
    context = LlamaContext(model=model, params=params, verbose=False)
    eos = frozenset(t for t in range(model.n_vocab()) if llama_cpp.llama_vocab_is_eog(model.vocab, t))
    info = ModelInfo(model_name, window, eos)
    log.info(
        "llama.cpp: %s with %d sequence slots of %d tokens, %d decode and %d prompt threads",
        gguf.name, slots, window, params.n_threads, params.n_threads_batch,
    )  # fmt: skip
    return LlamaCppLM(tokenizer, context, info)


def default_threads() -> int:
    """Half the logical cores, at least one (llama-cpp-python's own default).

    llama.cpp's worker threads spin while they wait for each other, so on a shared or
    hyper-threaded CPU one thread per logical core is slower, not faster: on this 2-core
    machine under load, 1 thread decoded a step in ~50 ms where 2 took 100-700 ms.
    """
    return max((os.cpu_count() or 1) // 2, 1)


@llama_cpp.llama_log_callback
def _quiet(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """llama.cpp logs every tensor at load time; keep warnings and errors only."""
    if level in (3, 4):  # GGML_LOG_LEVEL_WARN, GGML_LOG_LEVEL_ERROR
        log.warning("llama.cpp: %s", text.decode(errors="replace").rstrip())


def _quiet_logs() -> None:
    llama_cpp.llama_log_set(_quiet, ctypes.c_void_p(0))
