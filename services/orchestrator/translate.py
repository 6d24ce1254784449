"""Protobuf <-> domain conversions of the values every orchestrator message shares:
filters, metadata, sampling, conversation turns. Used by the servicer and by the gRPC
adapters of the ports — the only two places that see protobuf."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct, Value

from ragmesh.v1 import common_pb2, orchestrator_pb2
from ragmesh.vocabulary import ROLE_FROM_PROTO, ROLE_PROTO
from services.common.errors import InvalidArgument
from services.orchestrator.domain import Chunking, Document, Filter, IngestProgress, Sampling, Scalar, Turn

_OP_NAMES = {v: k.removeprefix("FILTER_OP_") for k, v in common_pb2.FilterOp.items() if v}
_OP_VALUES = {name: value for value, name in _OP_NAMES.items()}


def metadata_dict(struct: Struct) -> dict[str, Any]:
    """A Struct as a plain dict (numbers are floats, as in JSON). A Struct holding NaN or an
    infinity (which JSON cannot represent) is converted as it is, so that the document
    checks reject that one document with a reason instead of failing the whole call."""
    if not struct.fields:
        return {}
    try:
        return MessageToDict(struct)
    except ValueError:
        return _plain_struct(struct)


def _plain_struct(struct: Struct) -> dict[str, Any]:
    return {key: _plain_value(value) for key, value in struct.fields.items()}


def _plain_value(value: Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return _plain_struct(value.struct_value)
    if kind == "list_value":
        return [_plain_value(item) for item in value.list_value.values]
    return None if kind in (None, "null_value") else getattr(value, kind)


def metadata_struct(metadata: Mapping[str, Any]) -> Struct:
    """A plain dict as a Struct."""
    struct = Struct()
    if metadata:
        struct.update(dict(metadata))
    return struct


def _scalar_value(scalar: common_pb2.Scalar, where: str) -> Scalar:
    kind = scalar.WhichOneof("kind")
    if kind is None:
        raise InvalidArgument(
            f"{where}: a filter value must set one of string_value, int_value, double_value, bool_value"
        )
    value: Scalar = getattr(scalar, kind)
    return value


def _scalar_proto(value: Scalar) -> common_pb2.Scalar:
    if isinstance(value, bool):
        return common_pb2.Scalar(bool_value=value)
    if isinstance(value, int):
        return common_pb2.Scalar(int_value=value)
    if isinstance(value, float):
        return common_pb2.Scalar(double_value=value)
    return common_pb2.Scalar(string_value=value)


def filter_from_proto(message: common_pb2.Filter, index: int) -> Filter:
    """A Filter from its message; InvalidArgument names the clause when its shape is wrong."""
    where = f"filters[{index}]"
    op = _OP_NAMES.get(message.op)
    if op is None:
        raise InvalidArgument(f"{where}: op must be one of {', '.join(_OP_VALUES)}, got {message.op}")
    value = _scalar_value(message.value, where) if message.HasField("value") else None
    values = tuple(_scalar_value(v, where) for v in message.values)
    return Filter(message.field, op, value, values)


def filter_to_proto(clause: Filter) -> common_pb2.Filter:
    """The message of a Filter (the retriever checks fields, kinds and sizes)."""
    message = common_pb2.Filter(field=clause.field, op=_OP_VALUES.get(clause.op, common_pb2.FILTER_OP_UNSPECIFIED))
    if clause.value is not None:
        message.value.CopyFrom(_scalar_proto(clause.value))
    message.values.extend(_scalar_proto(v) for v in clause.values)
    return message


def filter_ops() -> tuple[str, ...]:
    """The operator names a Filter may use."""
    return tuple(_OP_VALUES)


def sampling_from_proto(message: common_pb2.SamplingParams) -> Sampling:
    """Sampling with None for every field the message leaves unset."""

    def optional(name: str) -> Any:
        return getattr(message, name) if message.HasField(name) else None  # type: ignore[arg-type]

    return Sampling(
        max_new_tokens=optional("max_new_tokens"),
        temperature=optional("temperature"),
        top_p=optional("top_p"),
        top_k=optional("top_k"),
        seed=optional("seed"),
        stop=tuple(message.stop),
        repetition_penalty=optional("repetition_penalty"),
    )


def sampling_to_proto(sampling: Sampling) -> common_pb2.SamplingParams:
    """The message of a Sampling (unset fields stay unset)."""
    fields = {
        name: getattr(sampling, name)
        for name in ("max_new_tokens", "temperature", "top_p", "top_k", "seed", "repetition_penalty")
        if getattr(sampling, name) is not None
    }
    return common_pb2.SamplingParams(stop=list(sampling.stop), **fields)


def turns_from_proto(messages: Sequence[common_pb2.ChatMessage], field: str) -> list[Turn]:
    """Turns of a conversation; InvalidArgument names a turn without a valid role."""
    turns = []
    for index, message in enumerate(messages):
        role = ROLE_FROM_PROTO.get(message.role)
        if role is None:
            raise InvalidArgument(f"{field}[{index}]: role must be SYSTEM, USER or ASSISTANT, got {message.role}")
        turns.append(Turn(role, message.content))
    return turns


def turns_to_proto(turns: Sequence[Turn]) -> list[common_pb2.ChatMessage]:
    """Messages of a conversation."""
    return [common_pb2.ChatMessage(role=ROLE_PROTO[turn.role], content=turn.content) for turn in turns]


def document_from_proto(message: orchestrator_pb2.Document) -> Document:
    """A Document from its message."""
    return Document(
        message.id,
        message.text,
        metadata_dict(message.metadata),
        content=message.content,
        media_type=message.media_type,
        file_name=message.file_name,
    )


def chunking_from_proto(message: orchestrator_pb2.ChunkingOptions) -> Chunking:
    """Chunking options from their message."""
    return Chunking(message.chunk_tokens, message.overlap_tokens)


def progress_to_proto(progress: IngestProgress) -> orchestrator_pb2.IngestProgress:
    """The message of an IngestProgress."""
    return orchestrator_pb2.IngestProgress(
        documents_total=progress.documents_total,
        documents_done=progress.documents_done,
        documents_failed=progress.documents_failed,
        chunks_total=progress.chunks_total,
        chunks_done=progress.chunks_done,
        errors=[orchestrator_pb2.DocumentError(document_id=e.document_id, reason=e.reason) for e in progress.errors],
        done=progress.done,
        collection_version=progress.collection_version,
        documents_unchanged=progress.documents_unchanged,
        pages_done=progress.pages_done,
        documents_deleted=progress.documents_deleted,
    )
