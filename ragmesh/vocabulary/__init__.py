"""One vocabulary for the concepts that server, clients and transports share: rerank
methods, search modes, cache levels, finish reasons and chat roles — each a string enum
whose values are what users type (CLI flags, JSON fields), with its protobuf mapping
written once here."""

from __future__ import annotations

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
RERANK_FROM_PROTO = {v: k for k, v in RERANK_PROTO.items()}
SEARCH_MODE_FROM_PROTO = {v: k for k, v in SEARCH_MODE_PROTO.items()}
CACHE_LEVEL_FROM_PROTO = {v: k for k, v in CACHE_LEVEL_PROTO.items()}
FINISH_REASON_FROM_PROTO = {v: k for k, v in FINISH_REASON_PROTO.items()}
ROLE_FROM_PROTO = {v: k for k, v in ROLE_PROTO.items()}
CONVERSATION_QUERY_FROM_PROTO = {v: k for k, v in CONVERSATION_QUERY_PROTO.items()}


E = TypeVar("E", bound=StrEnum)


def choice(enum: type[E], name: str, value: str) -> E:
    """``value`` as a member of ``enum``; ValueError naming ``name`` and the choices otherwise."""
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum if member.value)
        raise ValueError(f"{name} must be one of {choices}, got {value!r}") from None
