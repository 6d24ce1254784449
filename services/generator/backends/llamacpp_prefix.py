"""The KV cache of the prompt's head, computed once and copied into each new row.

A RAG prompt starts the same way every time: the chat template and the system turn, up to
the header of the first other message. Its keys and values are kept in a sequence of their
own; a new row whose prompt starts with them gets a copy (``llama_memory_seq_cp``, cheap) and
is prefilled from there.

Where a prompt is split is a function of the prompt alone — its head is what the chat
template renders before the first non-system message's content (:func:`head_length`) — and
a prompt is *always* prefilled as its head (copied, or computed alone into the head sequence
and then copied) followed by the rest. Splitting a prefill changes its floating-point sums
(the products take other shapes), so a split that depended on what a replica happened to
have cached would let the same greedy request answer differently on two replicas, or twice
on one. Runs on the decode thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import llama_cpp
from cachetools import LRUCache

from services.generator import metrics

#: Shorter heads are not worth a sequence copy (a prompt with one is prefilled whole).
MIN_SHARED_TOKENS = 16
#: Distinct heads remembered between rendering a prompt and prefilling it.
KNOWN_HEADS = 64


def head_length(rendered: Sequence[int], without_content: Sequence[int]) -> int:
    """How many leading tokens the rendering of a conversation shares with the rendering of
    the same conversation whose first non-system message is empty: its head."""
    count = 0
    for x, y in zip(rendered, without_content, strict=False):
        if x != y:
            break
        count += 1
    return count


class KnownHeads:
    """The heads of the prompts rendered lately (the event loop renders, the decode thread
    prefills: a lock between them)."""

    def __init__(self) -> None:
        self._heads: LRUCache[tuple[int, ...], int] = LRUCache(KNOWN_HEADS)
        self._lock = threading.Lock()

    def add(self, head: Sequence[int]) -> None:
        """Remember the head of a prompt about to be prefilled."""
        if len(head) >= MIN_SHARED_TOKENS:
            with self._lock:
                self._heads[tuple(head)] = len(head)

    def length_in(self, prompt: Sequence[int]) -> int:
        """The length of the longest known head ``prompt`` starts with (0: none)."""
        with self._lock:
            heads = list(self._heads)
        return max((len(h) for h in heads if len(h) < len(prompt) and tuple(prompt[: len(h)]) == h), default=0)


class PrefixCache:
    """The head last prefilled, held in sequence ``seq_id`` of ``memory``."""

    def __init__(self, memory: Any, seq_id: int, fill: Callable[[list[int], int], None]) -> None:
        self.memory = memory
        self.seq_id = seq_id
        #: Decodes tokens into a sequence from position 0 (no outputs needed).
        self._fill = fill
        self.tokens: list[int] = []

    def reuse(self, prompt: list[int], head: int, row_seq: int) -> int:
        """Put the KV cache of ``prompt[:head]`` into row ``row_seq``'s (empty) cache, from
        the held head or computed into it first; how many tokens that is (0 when ``head`` is
        too short: prefill the whole prompt)."""
        if head < MIN_SHARED_TOKENS or head >= len(prompt):
            return 0
        if self.tokens != prompt[:head]:
            self._replace(prompt[:head])
        else:
            metrics.PROMPT_TOKENS_REUSED.inc(head)
        llama_cpp.llama_memory_seq_cp(self.memory, self.seq_id, row_seq, -1, -1)
        return head

    def clear(self) -> None:
        """Forget the head (the context's memory was cleared)."""
        self.tokens = []

    def _replace(self, head: list[int]) -> None:
        llama_cpp.llama_memory_seq_rm(self.memory, self.seq_id, -1, -1)
        self.tokens = []
        self._fill(head, self.seq_id)
        self.tokens = head
