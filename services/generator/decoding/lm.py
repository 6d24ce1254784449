"""The causal-LM interface the generator engine depends on (no torch needed to import it).

A backend owns the model, its tokenizer and one decode batch: rows join the batch with
their prompts (``join``), advance one token per ``step``, and leave (``leave``) when they
finish or their caller goes away. Rows are addressed by their position in the batch,
which the scheduler keeps in step with its own list of sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ragmesh.vocabulary import Role


@dataclass(frozen=True)
class ChatTurn:
    """One message of a conversation: its role (None when the caller sent none) and content."""

    role: Role | None
    content: str


@dataclass(frozen=True)
class Sampling:
    """Validated sampling parameters of one sequence (what the backend needs per row)."""

    #: 0 is greedy decoding.
    temperature: float = 0.0
    top_p: float = 1.0
    #: 0 turns top-k filtering off.
    top_k: int = 0
    #: 1.0 turns the penalty off.
    repetition_penalty: float = 1.0
    seed: int = 0

    @property
    def greedy(self) -> bool:
        """Whether the next token is simply the most likely one."""
        return self.temperature == 0.0


@dataclass(frozen=True)
class ModelInfo:
    """What callers need to know about the loaded model."""

    model_name: str
    context_length: int
    #: Token ids that end a generation.
    eos_token_ids: frozenset[int]


class CausalLMBackend(Protocol):
    """A causal LM with a tokenizer, a chat template and one continuous decode batch."""

    info: ModelInfo

    def render_chat(self, turns: list[ChatTurn]) -> list[int]:
        """Token ids of the conversation rendered with the chat template, ready for the
        assistant's answer."""
        ...

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` as plain text (no special tokens)."""
        ...

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens of each text, no special tokens added."""
        ...

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids`` (special tokens skipped); incomplete UTF-8 shows as U+FFFD."""
        ...

    def join(self, prompts: list[list[int]], sampling: list[Sampling]) -> list[int]:
        """Prefill ``prompts``, append them as new rows at the end of the batch, and
        return each new row's first generated token."""
        ...

    def step(self) -> list[int]:
        """Decode one token for every row, in row order."""
        ...

    def leave(self, rows: list[int]) -> None:
        """Remove the rows at these positions; later rows move up."""
        ...

    def reset(self) -> None:
        """Drop every row (after a failed step the batch state cannot be trusted)."""
        ...

    @property
    def batch_size(self) -> int:
        """Rows in the batch now."""
        ...
