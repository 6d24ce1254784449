"""Domain dataclasses as JSON and back, for the records the core keeps in shared stores
(jobs, batches, their payloads): plain JSON with a format number, never protobuf, so
replicas of different versions read each other's records or know they cannot.

Decoding follows the dataclasses' own type hints: nested dataclasses, string enums,
tuples and lists, optional values, bytes (as base64) and plain JSON values.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence
from enum import Enum
from functools import cache
from typing import Any, TypeVar, Union

T = TypeVar("T")


class StaleRecord(ValueError):
    """A record written in another format."""


def to_json(value: Any, format_version: int) -> bytes:
    """``value`` (a dataclass) as versioned JSON."""
    payload = {"format": format_version, "value": _plain(value)}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def from_json(raw: bytes, kind: type[T], format_version: int) -> T:
    """The ``kind`` stored as ``raw``; StaleRecord when it has another format."""
    payload = json.loads(raw)
    if not isinstance(payload, dict) or payload.get("format") != format_version:
        raise StaleRecord(f"a {kind.__name__} record of another format")
    return typing.cast(T, _build(kind, payload["value"]))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@cache
def _hints(kind: type) -> dict[str, Any]:
    return typing.get_type_hints(kind)


def _build(kind: Any, data: Any) -> Any:  # noqa: PLR0911 - one return per kind of type
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if data is None or len(options) > 1:  # a union of JSON scalars is its value
            return data
        return _build(options[0], data)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        fields = {f.name for f in dataclasses.fields(kind) if f.init}
        return kind(**{name: _build(hints[name], value) for name, value in data.items() if name in fields})
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(data)
    if kind is bytes:
        return base64.b64decode(data["b64"])
    if origin in (tuple, Sequence):
        args = typing.get_args(kind)
        return tuple(_build(args[0], item) for item in data)
    if origin is list:
        return [_build(typing.get_args(kind)[0], item) for item in data]
    return data
