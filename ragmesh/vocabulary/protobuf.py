"""The vocabulary's enums to and from the contract's protobuf enums, written once (every
transport, adapter and client converts with these tables)."""

from __future__ import annotations

from ragmesh.v1 import common_pb2, orchestrator_pb2
from ragmesh.vocabulary import (
    CacheLevel,
    ContextMode,
    ConversationQuery,
    FilterOp,
    FinishReason,
    JobState,
    RerankMethod,
    Role,
    SearchMode,
)

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
CONTEXT_MODE_PROTO = {mode: orchestrator_pb2.ContextMode.Value(f"CONTEXT_MODE_{mode.name}") for mode in ContextMode}
FILTER_OP_PROTO = {op: common_pb2.FilterOp.Value(f"FILTER_OP_{op.name}") for op in FilterOp}
JOB_STATE_PROTO = {state: orchestrator_pb2.JobState.Value(f"JOB_STATE_{state.name}") for state in JobState}
RERANK_FROM_PROTO = {v: k for k, v in RERANK_PROTO.items()}
SEARCH_MODE_FROM_PROTO = {v: k for k, v in SEARCH_MODE_PROTO.items()}
CACHE_LEVEL_FROM_PROTO = {v: k for k, v in CACHE_LEVEL_PROTO.items()}
FINISH_REASON_FROM_PROTO = {v: k for k, v in FINISH_REASON_PROTO.items() if k is not FinishReason.DEADLINE}
ROLE_FROM_PROTO = {v: k for k, v in ROLE_PROTO.items()}
CONVERSATION_QUERY_FROM_PROTO = {v: k for k, v in CONVERSATION_QUERY_PROTO.items()}
CONTEXT_MODE_FROM_PROTO = {v: k for k, v in CONTEXT_MODE_PROTO.items()}
FILTER_OP_FROM_PROTO = {v: k for k, v in FILTER_OP_PROTO.items()}
JOB_STATE_FROM_PROTO = {v: k for k, v in JOB_STATE_PROTO.items()}
