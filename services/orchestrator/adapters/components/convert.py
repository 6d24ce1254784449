"""Domain values into the components' request messages (the outbound side of protobuf):
filters, sampling and conversation turns. Metadata and scalars convert with
:mod:`ragmesh.vocabulary.values`, as on every side of the contract."""

from __future__ import annotations

from collections.abc import Sequence

from ragmesh.v1 import common_pb2
from ragmesh.vocabulary.protobuf import FILTER_OP_PROTO, ROLE_PROTO
from ragmesh.vocabulary.values import scalar_proto
from services.orchestrator.core.domain import Filter, Sampling, Turn


def filter_to_proto(clause: Filter) -> common_pb2.Filter:
    """The message of a Filter (the retriever checks fields, kinds and sizes)."""
    message = common_pb2.Filter(field=clause.field, op=FILTER_OP_PROTO[clause.op])
    if clause.value is not None:
        message.value.CopyFrom(scalar_proto(clause.value))
    message.values.extend(scalar_proto(v) for v in clause.values)
    return message


def sampling_to_proto(sampling: Sampling) -> common_pb2.SamplingParams:
    """The message of a Sampling (unset fields stay unset)."""
    fields = {
        name: getattr(sampling, name)
        for name in ("max_new_tokens", "temperature", "top_p", "top_k", "seed", "repetition_penalty")
        if getattr(sampling, name) is not None
    }
    return common_pb2.SamplingParams(stop=list(sampling.stop), **fields)


def turns_to_proto(turns: Sequence[Turn]) -> list[common_pb2.ChatMessage]:
    """Messages of a conversation."""
    return [common_pb2.ChatMessage(role=ROLE_PROTO[turn.role], content=turn.content) for turn in turns]
