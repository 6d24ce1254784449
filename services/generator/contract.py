"""What the generator servicer needs from an engine: the one contract every backend keeps.

:class:`~services.generator.engine.Generator` implements it over a local model (the
transformers and llama.cpp backends, below the step-level scheduler);
:class:`~services.generator.backends.remote.RemoteGenerator` implements it over an
OpenAI-compatible server. Both validate requests with the same checks, stream the same
:class:`~ragmesh.vocabulary.TextDelta` / :class:`~services.generator.decoding.sequence.Finished`
events, refuse work beyond ``max_batch_size + max_waiting`` with Overloaded, and report
the same metrics.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from ragmesh.vocabulary import TextDelta
from services.generator.decoding.lm import ChatTurn
from services.generator.decoding.sequence import Finished
from services.generator.validation import SamplingRequest


@dataclass(frozen=True)
class GeneratorInfo:
    """What Info reports."""

    model_name: str
    context_length: int
    max_new_tokens_limit: int
    default_max_new_tokens: int
    max_batch_size: int


class GenerationEngine(Protocol):
    """Validated, admitted, cancellable generation behind GeneratorService."""

    def info(self) -> GeneratorInfo:
        """Model name, context window and limits."""
        ...

    async def count_tokens(self, texts: list[str], turns: list[ChatTurn]) -> tuple[list[int], int]:
        """Tokens of each text, and of the rendered conversation (0 without one)."""
        ...

    def generate(
        self,
        turns: list[ChatTurn],
        request: SamplingRequest,
        time_remaining: float | None = None,
        *,
        continue_final: bool = False,
    ) -> AsyncGenerator[TextDelta | Finished, None]:
        """Deltas, then one Finished; closing the generator cancels the generation. With
        ``continue_final`` the last turn is the assistant's answer so far, to be continued."""
        ...

    async def generate_text(
        self,
        turns: list[ChatTurn],
        request: SamplingRequest,
        time_remaining: float | None = None,
        *,
        continue_final: bool = False,
    ) -> tuple[str, Finished]:
        """The whole answer and its final event."""
        ...

    async def close(self) -> None:
        """Release threads, models and connections."""
        ...

    def readiness(self) -> AsyncIterator[bool] | None:
        """Changes of readiness after start (None: ready for good once started)."""
        ...
