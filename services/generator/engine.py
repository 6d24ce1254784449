"""The generator's domain logic: validation, prompt rendering, and streams of events.

The servicer turns protobuf into calls on :class:`Generator`; decoding itself happens in
the :class:`~services.generator.decoding.scheduler.Scheduler`'s thread on a
:class:`~services.generator.decoding.lm.CausalLMBackend`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator

from ragmesh.vocabulary import FinishReason, Role, TextDelta
from services.common.errors import DeadlineExceeded, InvalidArgument
from services.common.offload import INLINE_CHARS, off_loop_if
from services.generator import metrics
from services.generator.config import GenerationLimits
from services.generator.contract import GeneratorInfo
from services.generator.decoding.lm import CausalLMBackend, ChatTurn
from services.generator.decoding.scheduler import Scheduler
from services.generator.decoding.sequence import Event, Failed, Finished, Sequence
from services.generator.validation import (
    SamplingRequest,
    check_continuation,
    check_sampling,
    check_turns,
    fit_prompt,
)

#: Prompts longer than this (characters) are tokenized off the event loop.
#: The engine gives up this long before the caller's deadline, so the caller gets the
#: engine's DEADLINE_EXCEEDED (with how far it got) rather than a bare transport one.
_DEADLINE_MARGIN = 0.05


class Generator:
    """Validates requests, renders prompts, and streams what the scheduler decodes."""

    def __init__(self, backend: CausalLMBackend, limits: GenerationLimits) -> None:
        self.backend = backend
        self.limits = limits
        self.scheduler = Scheduler(backend, limits.max_batch_size, limits.max_waiting, limits.join_wait_seconds)

    def info(self) -> GeneratorInfo:
        """Model name, context window and limits."""
        return GeneratorInfo(
            model_name=self.backend.info.model_name,
            context_length=self.backend.info.context_length,
            max_new_tokens_limit=self.limits.max_new_tokens_limit,
            default_max_new_tokens=self.limits.default_max_new_tokens,
            max_batch_size=self.limits.max_batch_size,
        )

    async def start(self) -> None:
        """Start the decode thread and warm the model up with one token."""
        self.scheduler.start(asyncio.get_running_loop())
        await self.generate_text([ChatTurn(Role.USER, "Hello")], SamplingRequest(max_new_tokens=1))

    async def close(self) -> None:
        """Stop the decode thread, then free the model if the backend holds native memory."""
        await self.scheduler.stop()
        release = getattr(self.backend, "close", None)
        if callable(release):
            release()

    def readiness(self) -> AsyncIterator[bool] | None:
        """A local model stays ready once warmed up."""
        return None

    async def count_tokens(self, texts: list[str], turns: list[ChatTurn]) -> tuple[list[int], int]:
        """Tokens of each text, and of the rendered conversation (0 without one)."""
        if not texts and not turns:
            raise InvalidArgument("nothing to count: send texts, messages or both")
        if turns:
            check_turns(turns, self.limits)
        chars = sum(map(len, texts)) + sum(len(t.content) for t in turns)
        if chars > self.limits.max_prompt_chars:
            raise InvalidArgument(f"the request holds {chars} characters; the limit is {self.limits.max_prompt_chars}")
        counts = await off_loop_if(chars > INLINE_CHARS, lambda: self.backend.count_tokens(texts) if texts else [])
        prompt = len(await off_loop_if(chars > INLINE_CHARS, lambda: self.backend.render_chat(turns))) if turns else 0
        return counts, prompt

    async def generate(
        self,
        turns: list[ChatTurn],
        request: SamplingRequest,
        time_remaining: float | None = None,
        *,
        continue_final: bool = False,
    ) -> AsyncGenerator[TextDelta | Finished, None]:
        """Stream deltas, then one Finished; the sequence leaves the batch if the caller
        stops iterating. DEADLINE_EXCEEDED when ``time_remaining`` runs out first. With
        ``continue_final`` the last turn (an assistant's partial answer) is continued."""
        sequence = await self._sequence(turns, request, time_remaining, continue_final)
        self.scheduler.submit(sequence)
        metrics.TOKENS.labels("prompt").inc(len(sequence.prompt))
        try:
            while True:
                event: Event = await sequence.events.get()
                if isinstance(event, Failed):
                    raise event.error
                if isinstance(event, Finished) and event.reason is FinishReason.DEADLINE:
                    raise DeadlineExceeded(
                        f"the deadline passed after {event.completion_tokens} generated tokens; "
                        "allow more time or ask for fewer tokens"
                    )
                yield event
                if isinstance(event, Finished):
                    return
        finally:
            if not sequence.finished:
                self.scheduler.cancel(sequence)

    def _render(self, turns: list[ChatTurn], continue_final: bool) -> list[int]:
        """The prompt's tokens: the chat rendered for a new assistant turn, or, to continue
        one, the chat before it rendered so, then the answer so far as plain text."""
        if not continue_final:
            return self.backend.render_chat(turns)
        return self.backend.render_chat(turns[:-1]) + self.backend.encode(turns[-1].content)

    async def generate_text(
        self,
        turns: list[ChatTurn],
        request: SamplingRequest,
        time_remaining: float | None = None,
        *,
        continue_final: bool = False,
    ) -> tuple[str, Finished]:
        """The whole answer (the same decoding as :meth:`generate`) and its final event."""
        parts: list[str] = []
        async with contextlib.aclosing(
            self.generate(turns, request, time_remaining, continue_final=continue_final)
        ) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                else:
                    return "".join(parts), event
        raise RuntimeError("generation ended without a final event")  # pragma: no cover

    async def _sequence(
        self, turns: list[ChatTurn], request: SamplingRequest, time_remaining: float | None, continue_final: bool
    ) -> Sequence:
        check_turns(turns, self.limits)
        if continue_final:
            check_continuation(turns)
        sampling, requested = check_sampling(request, self.limits)
        chars = sum(len(turn.content) for turn in turns)
        rendered = await off_loop_if(chars > INLINE_CHARS, lambda: self._render(turns, continue_final))
        prompt, max_new, truncated = fit_prompt(rendered, requested, self.limits, self.backend.info.context_length)
        deadline = None if time_remaining is None else time.monotonic() + time_remaining - _DEADLINE_MARGIN
        return Sequence(
            prompt=prompt,
            sampling=sampling,
            max_new_tokens=max_new,
            stops=list(request.stop),
            eos_token_ids=self.backend.info.eos_token_ids,
            decode=self.backend.decode,
            deadline=deadline,
            truncated_prompt_tokens=truncated,
        )
