"""Request checks of the generator: messages and sampling parameters against their ranges.

Every message names the field and the allowed range, so a caller can fix its request
from the INVALID_ARGUMENT text alone. The ranges are the ones documented in
``common.proto``.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

from ragmesh.vocabulary import Role
from services.common.errors import InvalidArgument
from services.generator.config import GenerationLimits
from services.generator.decoding.lm import ChatTurn, Sampling

MAX_STOPS = 8
MAX_STOP_CHARS = 64
MAX_TOP_K = 1000


@dataclass(frozen=True)
class SamplingRequest:
    """Sampling parameters as a caller sent them; None means "the server's default"."""

    max_new_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    repetition_penalty: float | None = None


def check_turns(turns: list[ChatTurn], limits: GenerationLimits) -> None:
    """Raise InvalidArgument unless ``turns`` is a non-empty, bounded, well-formed chat."""
    if not turns:
        raise InvalidArgument("messages is empty; send 1 to 64 messages")
    if len(turns) > limits.max_messages:
        raise InvalidArgument(f"messages has {len(turns)} entries; the limit is {limits.max_messages}")
    for index, turn in enumerate(turns):
        if not isinstance(turn.role, Role):
            raise InvalidArgument(f"messages[{index}].role is not set; use ROLE_SYSTEM, ROLE_USER or ROLE_ASSISTANT")
        if not turn.content.strip():
            raise InvalidArgument(f"messages[{index}].content is empty; every message needs content")
    chars = sum(len(turn.content) for turn in turns)
    if chars > limits.max_prompt_chars:
        raise InvalidArgument(f"messages hold {chars} characters; the limit is {limits.max_prompt_chars}")


def check_continuation(turns: list[ChatTurn]) -> None:
    """Raise InvalidArgument unless the last of ``turns`` is an assistant's partial answer
    after at least one other message."""
    if len(turns) < 2 or turns[-1].role is not Role.ASSISTANT:
        raise InvalidArgument(
            "continue_final_message needs the assistant's answer so far as the last message, after the conversation"
        )


def check_sampling(request: SamplingRequest, limits: GenerationLimits) -> tuple[Sampling, int | None]:
    """Validated per-row sampling and the requested max_new_tokens (None when unset)."""
    if request.max_new_tokens is not None and not 1 <= request.max_new_tokens <= limits.max_new_tokens_limit:
        raise InvalidArgument(
            f"sampling.max_new_tokens is {request.max_new_tokens}; allowed 1 to {limits.max_new_tokens_limit}"
        )
    temperature = _number("temperature", request.temperature, 0.0)
    if not 0.0 <= temperature <= 2.0:
        raise InvalidArgument(f"sampling.temperature is {temperature}; allowed 0 (greedy) or 0 < temperature <= 2")
    top_p = _number("top_p", request.top_p, 1.0)
    if not 0.0 < top_p <= 1.0:
        raise InvalidArgument(f"sampling.top_p is {top_p}; allowed 0 < top_p <= 1")
    top_k = 0 if request.top_k is None else request.top_k
    if not 0 <= top_k <= MAX_TOP_K:
        raise InvalidArgument(f"sampling.top_k is {top_k}; allowed 0 (off) to {MAX_TOP_K}")
    penalty = _number("repetition_penalty", request.repetition_penalty, 1.0)
    if not 1.0 <= penalty <= 2.0:
        raise InvalidArgument(f"sampling.repetition_penalty is {penalty}; allowed 1.0 (off) to 2.0")
    _check_stops(request.stop)
    # An unseeded request still gets a seed, so its row has its own random stream.
    seed = secrets.randbits(63) if request.seed is None else request.seed % (1 << 64)
    return Sampling(temperature, top_p, top_k, penalty, seed), request.max_new_tokens


def _number(name: str, value: float | None, default: float) -> float:
    if value is None:
        return default
    if not math.isfinite(value):
        raise InvalidArgument(f"sampling.{name} is {value}; it must be a finite number")
    return float(value)


def _check_stops(stops: tuple[str, ...]) -> None:
    if len(stops) > MAX_STOPS:
        raise InvalidArgument(f"sampling.stop has {len(stops)} entries; allowed at most {MAX_STOPS}")
    for index, stop in enumerate(stops):
        if not 1 <= len(stop) <= MAX_STOP_CHARS:
            raise InvalidArgument(f"sampling.stop[{index}] has {len(stop)} characters; allowed 1 to {MAX_STOP_CHARS}")


def fit_prompt(
    prompt: list[int], requested: int | None, limits: GenerationLimits, context_length: int
) -> tuple[list[int], int, int]:
    """(prompt, max_new_tokens, truncated tokens) that fit the context window.

    An unset max_new_tokens shrinks to the room the prompt leaves; a requested one that
    does not fit is an error, unless prompt truncation is configured, which drops the
    oldest prompt tokens and reports how many.
    """
    room = context_length - len(prompt)
    if requested is None:
        wanted = min(limits.default_max_new_tokens, context_length - 1)
        if room >= 1:
            return prompt, min(wanted, room), 0
    else:
        wanted = requested
        if wanted <= room:
            return prompt, wanted, 0
    if not limits.truncate_prompt or wanted >= context_length:
        raise InvalidArgument(
            f"the prompt has {len(prompt)} tokens and max_new_tokens is {wanted}: together they exceed the "
            f"context window of {context_length} tokens; shorten the messages or ask for fewer tokens"
        )
    keep = context_length - wanted
    return prompt[-keep:], wanted, len(prompt) - keep
