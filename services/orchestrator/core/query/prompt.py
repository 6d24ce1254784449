"""The grounded prompt: numbered sources the model must cite, then as much of the
conversation as still fits, fitted to the generator's context window by the generator's
own token counts. A source that does not fit is left out whole — never cut mid-chunk —
and only the sources given to the model are returned; history turns are dropped oldest
first, and the answer says how many were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ragmesh.vocabulary import Role
from ragmesh.vocabulary.experiments.settings import render_prompt
from services.orchestrator.core.domain import Turn
from services.orchestrator.core.ports import TokenCounts

SYSTEM_PROMPT = (
    "You are a careful assistant. Answer the question using only the numbered sources. "
    "Cite the sources you use by their number in brackets, like [1]. "
    "If the sources do not contain the answer, say that you do not know."
)
NO_SOURCES_ANSWER = "I could not find anything in the indexed documents that answers this question."
#: Tokens kept free for the chat template's per-message framing and renumbering.
SAFETY_TOKENS = 16
#: Tokens each source block adds beyond its text (blank line, "[n] ").
PER_SOURCE_TOKENS = 6
#: Tokens each history turn adds beyond its text (the chat template's role markers).
PER_TURN_TOKENS = 8
#: History turns a prompt can carry: the generator takes 64 messages (its max_messages) and
#: the system instructions and the question take two; older turns are dropped (and
#: counted in history_turns_dropped) although the contract accepts 64 turns of history.
MAX_PROMPT_HISTORY_TURNS = 62


@dataclass(frozen=True)
class FittedPrompt:
    """Turns for the generator, the indexes of the candidate sources they cite, and how
    many of the oldest history turns were left out."""

    turns: list[Turn]
    included: list[int]
    history_dropped: int = 0


def source_block(number: int, text: str) -> str:
    """How one source appears in the prompt."""
    return f"[{number}] {text.strip()}"


def build_turns(
    question: str, texts: Sequence[str], history: Sequence[Turn] = (), template: str | None = None
) -> list[Turn]:
    """System instructions, the earlier turns, and a user turn with the numbered sources
    and the question.

    Sources are numbered by rank ([1] is the best) but listed best-last, right before the
    question: small models lean on what they read last (on the sample corpus SmolLM2-135M
    answered 7 of 16 questions right this way against 4 of 16 best-first).
    """
    blocks = [source_block(number, text) for number, text in enumerate(texts, start=1)]
    sources = "\n\n".join(reversed(blocks))
    if template is not None:  # an experiment variant's own user turn
        user = render_prompt(template, sources=sources, question=question.strip())
    elif texts:
        user = f"Sources:\n{sources}\n\nQuestion: {question.strip()}"
    else:
        user = f"Question: {question.strip()}"
    return [Turn(Role.SYSTEM, SYSTEM_PROMPT), *history, Turn(Role.USER, user)]


def texts_to_count(
    question: str, texts: Sequence[str], history: Sequence[Turn], template: str | None = None
) -> tuple[list[str], list[Turn]]:
    """What one CountTokens call counts: every source's text and every history turn's,
    and the prompt without either."""
    return [*texts, *(turn.content for turn in history)], build_turns(question, [], (), template)


def fit(
    question: str,
    texts: Sequence[str],
    history: Sequence[Turn],
    counts: TokenCounts,
    *,
    context_length: int,
    max_new_tokens: int,
    template: str | None = None,
) -> FittedPrompt:
    """Sources in rank order while they fit, then the newest history turns that still fit."""
    budget = context_length - max_new_tokens - counts.prompt_tokens - SAFETY_TOKENS
    source_tokens = counts.text_tokens[: len(texts)]
    turn_tokens = counts.text_tokens[len(texts) :]
    included: list[int] = []
    used = 0
    for index, tokens in enumerate(source_tokens):
        cost = tokens + PER_SOURCE_TOKENS
        if used + cost <= budget:
            included.append(index)
            used += cost
    kept = 0
    for tokens in reversed(turn_tokens):  # newest first; the first that does not fit ends the history
        cost = tokens + PER_TURN_TOKENS
        if used + cost > budget or kept == MAX_PROMPT_HISTORY_TURNS:
            break
        used += cost
        kept += 1
    kept_history = list(history[len(history) - kept :]) if kept else []
    turns = build_turns(question, [texts[i] for i in included], kept_history, template)
    return FittedPrompt(turns, included, len(history) - kept)
