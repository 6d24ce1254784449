"""The contract's value messages to and from Python, written once for every side of a call:
``Scalar`` (a filter value) and ``Struct`` (metadata)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct, Value

from ragmesh.v1 import common_pb2
from ragmesh.vocabulary import Scalar


def scalar_proto(value: Scalar) -> common_pb2.Scalar:
    """A typed Scalar for a str, int, float or bool (TypeError for anything else)."""
    if isinstance(value, bool):
        return common_pb2.Scalar(bool_value=value)
    if isinstance(value, int):
        return common_pb2.Scalar(int_value=value)
    if isinstance(value, float):
        return common_pb2.Scalar(double_value=value)
    if isinstance(value, str):
        return common_pb2.Scalar(string_value=value)
    raise TypeError(f"filter values must be str, int, float or bool, got {type(value).__name__}")


def scalar_value(message: common_pb2.Scalar) -> Scalar | None:
    """The Python value of a Scalar, or None when it sets no kind."""
    kind = message.WhichOneof("kind")
    return None if kind is None else getattr(message, kind)


def metadata_dict(struct: Struct) -> dict[str, Any]:
    """A Struct as a plain dict (numbers are floats, as in JSON). A Struct holding NaN or an
    infinity (which JSON cannot represent) is converted as it is, so that the document
    checks can reject that one document with a reason instead of failing the whole call."""
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
