"""The openai backend: the generator's contract over an OpenAI-compatible server.

The remote engine (vLLM, TGI, NIM, llama.cpp's server) batches on its own, so this is an
engine beside :class:`~services.generator.engine.Generator`, not a backend below the
scheduler; it keeps everything else of the contract itself: the same request checks,
its own admission limit (``max_batch_size`` streams upstream at once, ``max_waiting``
more queued, beyond that RESOURCE_EXHAUSTED at once), deadlines, cancellation by closing
the HTTP stream, the same metrics, and readiness that follows the remote's health.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from ragmesh.vocabulary import FinishReason, TextDelta
from services.common.errors import DeadlineExceeded, InvalidArgument, Overloaded, RagmeshError
from services.common.offload import INLINE_CHARS, off_loop_if
from services.generator import metrics
from services.generator.backends.openai_client import Chunk, OpenAIClient
from services.generator.backends.token_counting import TokenCounter
from services.generator.config import GenerationLimits, OpenAISettings
from services.generator.contract import GeneratorInfo
from services.generator.decoding.lm import ChatTurn, Sampling
from services.generator.decoding.sequence import Finished
from services.generator.validation import SamplingRequest, check_continuation, check_sampling, check_turns

log = logging.getLogger(__name__)
#: Context window reported when neither the config nor the server names one.
FALLBACK_CONTEXT = 4096
_DEADLINE_MARGIN = 0.05
_REASONS = {"length": FinishReason.LENGTH, "stop": FinishReason.EOS}


class Admission:
    """At most ``active`` holders at once and ``waiting`` more queued; Overloaded beyond."""

    def __init__(self, active: int, waiting: int) -> None:
        self.limit, self.max_waiting = active, waiting
        self._slots = asyncio.Semaphore(active)
        self.active = self.waiting = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot (waiting for it if the queue has room)."""
        if self.active + self.waiting >= self.limit + self.max_waiting:
            metrics.REJECTED.inc()
            raise Overloaded(
                f"{self.active} generations streaming and {self.waiting} waiting (limits {self.limit} and "
                f"{self.max_waiting}); retry later"
            )
        self.waiting += 1
        metrics.WAITING.set(self.waiting)
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
            metrics.WAITING.set(self.waiting)
        self.active += 1
        metrics.IN_FLIGHT.set(self.active)
        try:
            yield
        finally:
            self.active -= 1
            metrics.IN_FLIGHT.set(self.active)
            self._slots.release()


class RemoteGenerator:
    """Streams chat completions of a remote server as the generator's events."""

    def __init__(
        self, settings: OpenAISettings, limits: GenerationLimits, counter: TokenCounter, context_length: int
    ) -> None:
        self.settings, self.limits, self.counter = settings, limits, counter
        self.client = OpenAIClient(settings)
        self.admission = Admission(limits.max_batch_size, limits.max_waiting)
        self.model_name = settings.model
        self.context_length = context_length
        self.ready = False
        self._changes: asyncio.Queue[bool] = asyncio.Queue()
        self._poller: asyncio.Task[None] | None = None

    def info(self) -> GeneratorInfo:
        """Model name, context window and limits."""
        return GeneratorInfo(
            model_name=self.model_name,
            context_length=self.context_length or FALLBACK_CONTEXT,
            max_new_tokens_limit=self.limits.max_new_tokens_limit,
            default_max_new_tokens=self.limits.default_max_new_tokens,
            max_batch_size=self.limits.max_batch_size,
        )

    async def start(self) -> None:
        """Learn the remote model (if it answers now), then keep polling its health."""
        try:
            model = await self.client.model()
        except RagmeshError as error:
            log.warning("the generation server does not answer yet: %s", error)
        else:
            self.model_name = self.model_name or model.name
            self.context_length = self.context_length or model.context_length
        self.ready = await self.client.healthy()
        self._poller = asyncio.create_task(self._poll_forever(), name="openai-health")

    async def close(self) -> None:
        """Stop polling and close the connections."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.client.close()

    async def readiness(self) -> AsyncIterator[bool]:
        """The remote's health as it changes, starting with the current state."""
        yield self.ready
        while True:
            yield await self._changes.get()

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval_seconds)
            ready = await self.client.healthy()
            if ready != self.ready:
                log.warning("the generation server at %s is %s", self.settings.url, "back" if ready else "gone")
                self.ready = ready
                self._changes.put_nowait(ready)

    async def count_tokens(self, texts: list[str], turns: list[ChatTurn]) -> tuple[list[int], int]:
        """Tokens of each text and of the conversation, with the configured tokenizer."""
        if not texts and not turns:
            raise InvalidArgument("nothing to count: send texts, messages or both")
        if turns:
            check_turns(turns, self.limits)
        chars = sum(map(len, texts)) + sum(len(t.content) for t in turns)
        if chars > self.limits.max_prompt_chars:
            raise InvalidArgument(f"the request holds {chars} characters; the limit is {self.limits.max_prompt_chars}")
        counts = await off_loop_if(chars > INLINE_CHARS, lambda: self.counter.count_tokens(texts) if texts else [])
        prompt = await off_loop_if(chars > INLINE_CHARS, lambda: self.counter.prompt_tokens(turns)) if turns else 0
        return counts, prompt

    async def generate(
        self,
        turns: list[ChatTurn],
        request: SamplingRequest,
        time_remaining: float | None = None,
        *,
        continue_final: bool = False,
    ) -> AsyncGenerator[TextDelta | Finished, None]:
        """Stream the remote's deltas, then one Finished; closing this closes the HTTP stream.
        ``continue_final`` asks the server to continue the last (assistant) message with vLLM's
        ``continue_final_message``, which servers without it ignore."""
        check_turns(turns, self.limits)
        if continue_final:
            check_continuation(turns)
        sampling, requested = check_sampling(request, self.limits)
        max_new = requested or self.limits.default_max_new_tokens
        body = _body(self.settings, turns, sampling, max_new, request.stop)
        if continue_final:
            body |= {"continue_final_message": True, "add_generation_prompt": False}
        loop = asyncio.get_running_loop()
        # Each wait is bounded by the deadline on its own, never a ``yield``: a timeout
        # must not fire while the caller's code, not this generator, is running.
        deadline = None if time_remaining is None else loop.time() + max(time_remaining - _DEADLINE_MARGIN, 0.0)
        state = _Progress(time.perf_counter())
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout_at(deadline):
                    await stack.enter_async_context(self.admission.slot())
                    chunks = aiter(await stack.enter_async_context(self.client.chat(body)))
                while True:
                    async with asyncio.timeout_at(deadline):
                        chunk = await anext(chunks, None)
                    if chunk is None:
                        break
                    delta = state.take(chunk)
                    if delta is not None:
                        yield delta
                yield state.finish(turns, self.counter)
        except RagmeshError:
            state.ended = True  # refused or failed: not a finish reason
            raise
        except TimeoutError:
            state.end(FinishReason.DEADLINE)
            raise DeadlineExceeded(
                f"the deadline passed after {state.tokens} generated tokens; allow more time or ask for fewer tokens"
            ) from None
        finally:
            state.end(FinishReason.CANCELLED)  # a no-op when the stream finished or failed

    async def generate_text(
        self,
        turns: list[ChatTurn],
        request: SamplingRequest,
        time_remaining: float | None = None,
        *,
        continue_final: bool = False,
    ) -> tuple[str, Finished]:
        """The whole answer (the same stream as :meth:`generate`) and its final event."""
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


class _Progress:
    """Tokens, timing, finish reason and usage of one remote stream."""

    def __init__(self, admitted_at: float) -> None:
        self.admitted_at = admitted_at
        self.first_at: float | None = None
        self.last_at = admitted_at
        self.tokens = 0
        self.reason = FinishReason.EOS
        self.usage: tuple[int | None, int | None] = (None, None)
        self.ended = False

    def take(self, chunk: Chunk) -> TextDelta | None:
        """Account for one chunk; the delta to send, if it carries text."""
        if chunk.finish_reason:
            self.reason = _REASONS.get(chunk.finish_reason, FinishReason.STOP)
        if chunk.completion_tokens is not None:
            self.usage = (chunk.prompt_tokens, chunk.completion_tokens)
        if not chunk.text:
            return None
        now = time.perf_counter()
        if self.first_at is None:
            self.first_at = now
            metrics.TIME_TO_FIRST_TOKEN.observe(now - self.admitted_at)
        else:
            metrics.INTER_TOKEN_LATENCY.observe(now - self.last_at)
        self.last_at = now
        # Servers stream about one token per chunk; the final usage, when sent, is exact.
        self.tokens += 1
        metrics.TOKENS.labels("completion").inc()
        return TextDelta(chunk.text, self.tokens)

    def finish(self, turns: list[ChatTurn], counter: TokenCounter) -> Finished:
        """The final event, with the server's usage when it reported one."""
        prompt, completion = self.usage
        prompt = prompt if prompt is not None else counter.prompt_tokens(turns)
        metrics.TOKENS.labels("prompt").inc(prompt)
        self.end(self.reason)
        ttft = 0.0 if self.first_at is None else self.first_at - self.admitted_at
        return Finished(self.reason, prompt, completion if completion is not None else self.tokens, ttft, 0)

    def end(self, reason: FinishReason) -> None:
        """Count the finish reason once."""
        if not self.ended:
            self.ended = True
            metrics.FINISHED.labels(reason.value).inc()


def _body(
    settings: OpenAISettings, turns: list[ChatTurn], s: Sampling, max_new: int, stop: tuple[str, ...]
) -> dict[str, Any]:
    """The chat-completions request of one generation."""
    body: dict[str, Any] = {
        "messages": [{"role": t.role, "content": t.content} for t in turns],
        "max_tokens": max_new,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "seed": s.seed % (1 << 31),
        "stream_options": {"include_usage": True},
    }
    if settings.extra_sampling:
        # Not OpenAI's own fields, but vLLM's, TGI's and llama.cpp's; llama.cpp's server
        # applies a 1.1 repeat penalty unless told otherwise.
        body |= {"top_k": s.top_k, "repetition_penalty": s.repetition_penalty, "repeat_penalty": s.repetition_penalty}
    if settings.model:
        body["model"] = settings.model
    if stop:
        body["stop"] = list(stop)
    return body
