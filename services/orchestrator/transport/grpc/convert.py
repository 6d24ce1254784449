"""OrchestratorService's request values into domain values (the inbound side of protobuf):
filters, sampling, conversation turns, documents, chunking; ingestion progress back out.
Metadata and scalars convert with :mod:`ragmesh.vocabulary.values`, as on every side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ragmesh.v1 import common_pb2, orchestrator_pb2
from ragmesh.vocabulary import FilterOp, Scalar
from ragmesh.vocabulary.protobuf import FILTER_OP_FROM_PROTO, ROLE_FROM_PROTO
from ragmesh.vocabulary.values import metadata_dict, scalar_value
from services.common.errors import InvalidArgument
from services.orchestrator.core.domain import Chunking, Document, Filter, IngestProgress, Sampling, Turn


def _scalar_value(scalar: common_pb2.Scalar, where: str) -> Scalar:
    value = scalar_value(scalar)
    if value is None:
        raise InvalidArgument(
            f"{where}: a filter value must set one of string_value, int_value, double_value, bool_value"
        )
    return value


def filter_from_proto(message: common_pb2.Filter, index: int) -> Filter:
    """A Filter from its message; InvalidArgument names the clause when its shape is wrong."""
    where = f"filters[{index}]"
    op = FILTER_OP_FROM_PROTO.get(message.op)
    if op is None:
        names = ", ".join(known.name for known in FilterOp)
        raise InvalidArgument(f"{where}: op must be one of {names}, got {message.op}")
    value = _scalar_value(message.value, where) if message.HasField("value") else None
    values = tuple(_scalar_value(v, where) for v in message.values)
    return Filter(message.field, op, value, values)


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


def turns_from_proto(messages: Sequence[common_pb2.ChatMessage], field: str) -> list[Turn]:
    """Turns of a conversation; InvalidArgument names a turn without a valid role."""
    turns = []
    for index, message in enumerate(messages):
        role = ROLE_FROM_PROTO.get(message.role)
        if role is None:
            raise InvalidArgument(f"{field}[{index}]: role must be SYSTEM, USER or ASSISTANT, got {message.role}")
        turns.append(Turn(role, message.content))
    return turns


def document_from_proto(message: orchestrator_pb2.Document) -> Document:
    """A Document from its message."""
    return Document(
        message.id,
        message.text,
        metadata_dict(message.metadata),
        content=message.content,
        media_type=message.media_type,
        file_name=message.file_name,
        access=tuple(message.access),
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
