"""One vocabulary for the concepts that server, clients and transports share: rerank
methods, search modes, cache levels, finish reasons, chat roles, filter operators, job
states and the text delta of a stream — each defined once, string enums whose values are
what users type (CLI flags, JSON fields), with the protobuf mapping written once here.

Every layer imports these (the client and CLI, the orchestrator's transports, core and
adapters, the components); none spells a concept of its own."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from ragmesh.v1 import common_pb2, orchestrator_pb2


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

    @property
    def takes_list(self) -> bool:
        """IN and NOT_IN compare with a list of values."""
        return self in (FilterOp.IN, FilterOp.NOT_IN)

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


@dataclass(frozen=True)
class TextDelta:
    """A piece of streamed answer text, and the tokens generated so far (0 when unknown)."""

    text: str
    tokens: int = 0


RERANK_PROTO = {
    RerankMethod.NONE: orchestrator_pb2.RERANK_METHOD_NONE,
    RerankMethod.MMR: orchestrator_pb2.RERANK_METHOD_MMR,
    RerankMethod.CROSS_ENCODER: orchestrator_pb2.RERANK_METHOD_CROSS_ENCODER,
}
SEARCH_MODE_PROTO = {
    SearchMode.AUTO: common_pb2.SEARCH_MODE_UNSPECIFIED,
    SearchMode.DENSE: common_pb2.SEARCH_MODE_DENSE,
    SearchMode.SPARSE: common_pb2.SEARCH_MODE_SPARSE,
    SearchMode.HYBRID: common_pb2.SEARCH_MODE_HYBRID,
}
CACHE_LEVEL_PROTO = {
    CacheLevel.NONE: orchestrator_pb2.CACHE_LEVEL_NONE,
    CacheLevel.L1: orchestrator_pb2.CACHE_LEVEL_L1,
    CacheLevel.L2: orchestrator_pb2.CACHE_LEVEL_L2,
}
FINISH_REASON_PROTO = {
    FinishReason.UNSPECIFIED: common_pb2.FINISH_REASON_UNSPECIFIED,
    FinishReason.LENGTH: common_pb2.FINISH_REASON_LENGTH,
    FinishReason.STOP: common_pb2.FINISH_REASON_STOP,
    FinishReason.EOS: common_pb2.FINISH_REASON_EOS,
    FinishReason.CANCELLED: common_pb2.FINISH_REASON_CANCELLED,
    FinishReason.DEADLINE: common_pb2.FINISH_REASON_CANCELLED,
}
ROLE_PROTO = {
    Role.SYSTEM: common_pb2.ROLE_SYSTEM,
    Role.USER: common_pb2.ROLE_USER,
    Role.ASSISTANT: common_pb2.ROLE_ASSISTANT,
}
CONVERSATION_QUERY_PROTO = {
    ConversationQuery.LAST: orchestrator_pb2.CONVERSATION_QUERY_LAST,
    ConversationQuery.CONCAT: orchestrator_pb2.CONVERSATION_QUERY_CONCAT,
    ConversationQuery.REWRITE: orchestrator_pb2.CONVERSATION_QUERY_REWRITE,
}
FILTER_OP_PROTO = {op: common_pb2.FilterOp.Value(f"FILTER_OP_{op.name}") for op in FilterOp}
JOB_STATE_PROTO = {state: orchestrator_pb2.JobState.Value(f"JOB_STATE_{state.name}") for state in JobState}
RERANK_FROM_PROTO = {v: k for k, v in RERANK_PROTO.items()}
SEARCH_MODE_FROM_PROTO = {v: k for k, v in SEARCH_MODE_PROTO.items()}
CACHE_LEVEL_FROM_PROTO = {v: k for k, v in CACHE_LEVEL_PROTO.items()}
FINISH_REASON_FROM_PROTO = {v: k for k, v in FINISH_REASON_PROTO.items() if k is not FinishReason.DEADLINE}
ROLE_FROM_PROTO = {v: k for k, v in ROLE_PROTO.items()}
CONVERSATION_QUERY_FROM_PROTO = {v: k for k, v in CONVERSATION_QUERY_PROTO.items()}
FILTER_OP_FROM_PROTO = {v: k for k, v in FILTER_OP_PROTO.items()}
JOB_STATE_FROM_PROTO = {v: k for k, v in JOB_STATE_PROTO.items()}


E = TypeVar("E", bound=StrEnum)


def choice(enum: type[E], name: str, value: str) -> E:
    """``value`` as a member of ``enum``; ValueError naming ``name`` and the choices otherwise."""
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum if member.value)
        raise ValueError(f"{name} must be one of {choices}, got {value!r}") from None
