"""The grounded prompt: numbered sources the model must cite, fitted to the generator's
context window by the generator's own token counts. A source that does not fit is left
out whole — never cut mid-chunk — and only the sources given to the model are returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ragmesh.v1 import common_pb2, generator_pb2

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


@dataclass(frozen=True)
class FittedPrompt:
    """Messages for the generator and the indexes of the candidate sources they cite."""

    messages: list[common_pb2.ChatMessage]
    included: list[int]


def source_block(number: int, text: str) -> str:
    """How one source appears in the prompt."""
    return f"[{number}] {text.strip()}"


def build_messages(question: str, texts: Sequence[str]) -> list[common_pb2.ChatMessage]:
    """System instructions plus a user turn with the numbered sources and the question.

    Sources are numbered by rank ([1] is the best) but listed best-last, right before the
    question: small models lean on what they read last (on the sample corpus SmolLM2-135M
    answered 7 of 16 questions right this way against 4 of 16 best-first).
    """
    blocks = [source_block(number, text) for number, text in enumerate(texts, start=1)]
    sources = "\n\n".join(reversed(blocks))
    user = f"Sources:\n{sources}\n\nQuestion: {question.strip()}" if texts else f"Question: {question.strip()}"
    return [
        common_pb2.ChatMessage(role=common_pb2.ROLE_SYSTEM, content=SYSTEM_PROMPT),
        common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content=user),
    ]


def count_request(question: str, texts: Sequence[str]) -> generator_pb2.CountTokensRequest:
    """One CountTokens call: every source's text and the prompt without sources."""
    return generator_pb2.CountTokensRequest(texts=list(texts), messages=build_messages(question, []))


def fit(
    question: str,
    texts: Sequence[str],
    counts: generator_pb2.CountTokensResponse,
    context_length: int,
    max_new_tokens: int,
) -> FittedPrompt:
    """Keep sources in rank order while the prompt plus the answer fit the context window."""
    budget = context_length - max_new_tokens - counts.prompt_tokens - SAFETY_TOKENS
    included: list[int] = []
    used = 0
    for index, tokens in enumerate(counts.text_tokens):
        cost = tokens + PER_SOURCE_TOKENS
        if used + cost <= budget:
            included.append(index)
            used += cost
    return FittedPrompt(build_messages(question, [texts[i] for i in included]), included)
