"""The retrieval query of a follow-up question, built from the conversation.

"Which port does it listen on?" retrieves nothing useful alone; with the earlier turns
(about Envoy) it does. Three ways, configurable per server and per request: the question
alone (``last``), the last user turns and the question concatenated (``concat``), or a
standalone question rewritten by the generator (``rewrite``).
"""

from __future__ import annotations

import contextlib

from ragmesh.vocabulary import ConversationQuery, Role, TextDelta
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Sampling, Turn
from services.orchestrator.core.ports import GeneratorPort

#: User turns (besides the question) that ``concat`` joins.
CONCAT_USER_TURNS = 2
#: Characters of history the rewrite prompt shows the generator.
REWRITE_HISTORY_CHARS = 4000
REWRITE_MAX_TOKENS = 48
REWRITE_INSTRUCTION = (
    "Rewrite the user's last question as one standalone question that can be understood "
    "without the conversation. Replace pronouns with what they refer to. "
    "Answer with the question only."
)


async def retrieval_query(
    question: str,
    history: tuple[Turn, ...],
    how: ConversationQuery,
    generator: GeneratorPort,
    deadline: Deadline,
) -> str:
    """The text to embed and search for ``question`` asked after ``history``."""
    if not history or how == ConversationQuery.LAST:
        return question
    if how == ConversationQuery.CONCAT:
        earlier = [t.content.strip() for t in history if t.role == Role.USER][-CONCAT_USER_TURNS:]
        return " ".join([*earlier, question])
    return await _rewrite(question, history, generator, deadline)


async def _rewrite(question: str, history: tuple[Turn, ...], generator: GeneratorPort, deadline: Deadline) -> str:
    transcript = "\n".join(f"{t.role.value}: {t.content.strip()}" for t in history)[-REWRITE_HISTORY_CHARS:]
    turns = [
        Turn(Role.SYSTEM, REWRITE_INSTRUCTION),
        Turn(Role.USER, f"Conversation:\n{transcript}\n\nLast question: {question}"),
    ]
    parts: list[str] = []
    stream = generator.generate(turns, Sampling(max_new_tokens=REWRITE_MAX_TOKENS, temperature=0.0), deadline)
    async with contextlib.aclosing(stream):
        async for event in stream:
            if isinstance(event, TextDelta):
                parts.append(event.text)
    rewritten = " ".join("".join(parts).split())
    # A rewrite that came back empty must not lose the question.
    return rewritten or question
