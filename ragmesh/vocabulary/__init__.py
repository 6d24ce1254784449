"""One vocabulary for the concepts that server, clients and transports share: rerank
methods, search modes, cache levels, finish reasons, chat roles, filter operators, job
states and the text delta of a stream — each defined once, string enums whose values are
what users type (CLI flags, JSON fields). Their protobuf mapping is written once too, in
:mod:`ragmesh.vocabulary.protobuf`; this module imports no protobuf, so the orchestrator's
core can use it.

Every layer imports these (the client and CLI, the orchestrator's transports, core and
adapters, the components); none spells a concept of its own."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar


class RerankMethod(StrEnum):
    """How retrieved candidates are reordered before the prompt is built."""

    NONE = "none"
    MMR = "mmr"
    CROSS_ENCODER = "cross_encoder"


class SearchMode(StrEnum):
    """How the retriever ranks chunks; AUTO lets it choose (hybrid when it can)."""

    AUTO = "auto"
    DENSE = "dense"
    SPARSE = "sparse"
    HYBRID = "hybrid"


class CacheLevel(StrEnum):
    """Which answer-cache level served an answer."""

    NONE = "none"
    L1 = "l1"
    L2 = "l2"


class FinishReason(StrEnum):
    """Why a generation ended ("" while it has not)."""

    UNSPECIFIED = ""
    LENGTH = "length"
    STOP = "stop"
    EOS = "eos"
    CANCELLED = "cancelled"
    #: The caller's deadline passed (sent as CANCELLED in the contract, with DEADLINE_EXCEEDED).
    DEADLINE = "deadline"


class Role(StrEnum):
    """Who speaks in a conversation turn."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class ConversationQuery(StrEnum):
    """How the retrieval query of a follow-up question is built from the conversation."""

    LAST = "last"  # the last user turn only
    CONCAT = "concat"  # the last user turns concatenated
    REWRITE = "rewrite"  # a standalone question rewritten by the generator


class ContextMode(StrEnum):
    """What of each retrieved chunk the model reads: every chunk whole, or its sentences
    that matter for the question (within a budget)."""

    CHUNKS = "chunks"
    SENTENCES = "sentences"


class FilterOp(StrEnum):
    """A filter clause's comparison; the value is its symbol (and the Milvus operator)."""

    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "in"
    NOT_IN = "not in"
    #: An array column (a chunk's ``access`` list) holds at least one of the values.
    ARRAY_CONTAINS_ANY = "array_contains_any"

    @property
    def takes_list(self) -> bool:
        """IN, NOT_IN and ARRAY_CONTAINS_ANY compare with a list of values."""
        return self in (FilterOp.IN, FilterOp.NOT_IN, FilterOp.ARRAY_CONTAINS_ANY)

    @property
    def ordering(self) -> bool:
        """LT, LE, GT and GE order numbers."""
        return self in (FilterOp.LT, FilterOp.LE, FilterOp.GT, FilterOp.GE)

    @classmethod
    def parse(cls, text: str) -> FilterOp:
        """An operator from its symbol (``==``, ``=``, ``>=``, ``in``, ``not in`` ...) or its
        name in any case (``eq``, ``NOT_IN``); ValueError listing both otherwise."""
        word = " ".join(text.strip().lower().split())
        found = _FILTER_OP_WORDS.get(word)
        if found is None:
            symbols = ", ".join(op.value for op in cls)
            names = ", ".join(op.name for op in cls)
            raise ValueError(f"unknown operator {text!r}; use one of {symbols} (or {names})")
        return found


_FILTER_OP_WORDS = {op.value: op for op in FilterOp} | {op.name.lower(): op for op in FilterOp} | {"=": FilterOp.EQ}


class JobState(StrEnum):
    """Where a background job (an ingestion job, a query batch, a source sync) stands."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        """Whether the job has ended (it will not change again)."""
        return self in (JobState.SUCCEEDED, JobState.FAILED)


Scalar = str | int | float | bool


@dataclass(frozen=True)
class TextDelta:
    """A piece of streamed answer text, and the tokens generated so far (0 when unknown)."""

    text: str
    tokens: int = 0


E = TypeVar("E", bound=StrEnum)


def choice(enum: type[E], name: str, value: str) -> E:
    """``value`` as a member of ``enum``; ValueError naming ``name`` and the choices otherwise."""
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum if member.value)
        raise ValueError(f"{name} must be one of {choices}, got {value!r}") from None
