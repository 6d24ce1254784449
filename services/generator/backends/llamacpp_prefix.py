"""The KV cache of the prompts' common head, computed once and copied into each new row.

A RAG prompt starts the same way every time: the chat template's system turn, the
instructions, the head of the user turn. Its keys and values are kept in a sequence of their
own; a new row whose prompt starts with them gets a copy (``llama_memory_seq_cp``, cheap)
and is prefilled from there. The head is learnt from the prompts themselves — the common
prefix of two consecutive prompts, when it is long enough to be worth keeping — so a change
of template or instructions is picked up without configuration. Runs on the decode thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import llama_cpp

from services.generator import metrics

#: Shorter common heads are not worth a sequence copy.
MIN_SHARED_TOKENS = 16


def shared_length(a: Sequence[int], b: Sequence[int], limit: int) -> int:
    """How many leading tokens ``a`` and ``b`` share, at most ``limit``."""
    count = 0
    for x, y in zip(a, b, strict=False):
        if count >= limit or x != y:
            break
        count += 1
    return count


class PrefixCache:
    """The common head of recent prompts, held in sequence ``seq_id`` of ``memory``."""

    def __init__(self, memory: Any, seq_id: int, fill: Callable[[list[int], int], None]) -> None:
        self.memory = memory
        self.seq_id = seq_id
        #: Decodes tokens into a sequence from position 0 (no outputs needed).
        self._fill = fill
        self.tokens: list[int] = []
        self._last: list[int] = []

    def reuse(self, prompt: list[int], row_seq: int) -> int:
        """Put the cached head shared with ``prompt`` into row ``row_seq``'s (empty) cache;
        how many tokens it holds now (0: prefill the whole prompt). At least the prompt's
        last token is always left to decode: its logits pick the first new token."""
        usable = len(prompt) - 1
        shared = shared_length(prompt, self.tokens, usable)
        if shared < MIN_SHARED_TOKENS:
            head = shared_length(prompt, self._last, usable)
            if head >= MIN_SHARED_TOKENS:
                self._replace(prompt[:head])
                shared = head
        self._last = prompt
        if shared < MIN_SHARED_TOKENS:
            return 0
        # Across the context's per-sequence streams only whole sequences copy; the tail the
        # prompt does not share is dropped from the copy.
        llama_cpp.llama_memory_seq_cp(self.memory, self.seq_id, row_seq, -1, -1)
        if shared < len(self.tokens):
            llama_cpp.llama_memory_seq_rm(self.memory, row_seq, shared, -1)
        metrics.PROMPT_TOKENS_REUSED.inc(shared)
        return shared

    def clear(self) -> None:
        """Forget the head (the context's memory was cleared)."""
        self.tokens, self._last = [], []

    def _replace(self, head: list[int]) -> None:
        llama_cpp.llama_memory_seq_rm(self.memory, self.seq_id, -1, -1)
        self.tokens = []
        self._fill(head, self.seq_id)
        self.tokens = head
