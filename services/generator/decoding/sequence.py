"""One generation in progress and the events it sends to its caller.

A :class:`Sequence` is shared by two sides: the decode thread feeds it tokens
(:meth:`Sequence.accept`) and the event loop reads its ``events`` queue. The only thing
the event loop writes is the ``cancelled`` flag, which the thread reads before each step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ragmesh.vocabulary import FinishReason, TextDelta
from services.generator import metrics
from services.generator.decoding.lm import Sampling
from services.generator.decoding.text import TextStream


@dataclass(frozen=True)
class Finished:
    """The end of a generation with its usage and timing."""

    reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token: float
    truncated_prompt_tokens: int


@dataclass(frozen=True)
class Failed:
    """The generation could not go on (a failed step, a shutdown)."""

    error: Exception


Event = TextDelta | Finished | Failed


@dataclass(eq=False)
class Sequence:
    """A prompt being decoded: its limits, its text state and its event queue."""

    prompt: list[int]
    sampling: Sampling
    max_new_tokens: int
    stops: list[str]
    eos_token_ids: frozenset[int]
    decode: Callable[[list[int]], str]
    #: ``time.monotonic()`` after which the sequence leaves the batch; None for no deadline.
    deadline: float | None = None
    truncated_prompt_tokens: int = 0
    events: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    cancelled: bool = False
    completion_tokens: int = 0
    admitted_at: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    last_token_at: float = 0.0
    finished: bool = False

    def __post_init__(self) -> None:
        self.text = TextStream(self.decode, self.stops)

    def accept(self, token: int, now: float, outbox: list[tuple[Sequence, Event]]) -> bool:
        """Take the next token; queue a delta and, when done, the final event. True if done."""
        self.completion_tokens += 1
        self._time_token(now)
        reason: FinishReason | None = None
        if token in self.eos_token_ids:
            delta, stopped = self.text.finish()
            reason = FinishReason.STOP if stopped else FinishReason.EOS
        else:
            delta, stopped = self.text.push(token)
            if stopped:
                reason = FinishReason.STOP
            elif self.completion_tokens >= self.max_new_tokens:
                tail, stopped = self.text.finish()
                delta += tail
                reason = FinishReason.STOP if stopped else FinishReason.LENGTH
        if delta:
            outbox.append((self, TextDelta(delta, self.completion_tokens)))
        if reason is None:
            return False
        outbox.append((self, self.finish(reason)))
        return True

    def finish(self, reason: FinishReason) -> Finished:
        """The final event (counted once in the finish-reason metric)."""
        if not self.finished:
            self.finished = True
            metrics.FINISHED.labels(reason.value).inc()
        ttft = 0.0 if self.first_token_at is None else self.first_token_at - self.admitted_at
        return Finished(reason, len(self.prompt), self.completion_tokens, ttft, self.truncated_prompt_tokens)

    def _time_token(self, now: float) -> None:
        if self.first_token_at is None:
            self.first_token_at = now
            metrics.TIME_TO_FIRST_TOKEN.observe(now - self.admitted_at)
        else:
            metrics.INTER_TOKEN_LATENCY.observe(now - self.last_token_at)
        self.last_token_at = now
