"""Building structured filters: ``where("lang", "==", "en")``, ``where("year", ">=", 2020)``,
``where("tag", "in", ["a", "b"])``, and parsing them from text (``lang=en``, ``year>=2020``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ragmesh.v1 import common_pb2

OPERATORS = {
    "==": common_pb2.FILTER_OP_EQ,
    "=": common_pb2.FILTER_OP_EQ,
    "!=": common_pb2.FILTER_OP_NE,
    "<": common_pb2.FILTER_OP_LT,
    "<=": common_pb2.FILTER_OP_LE,
    ">": common_pb2.FILTER_OP_GT,
    ">=": common_pb2.FILTER_OP_GE,
    "in": common_pb2.FILTER_OP_IN,
    "not in": common_pb2.FILTER_OP_NOT_IN,
}
_TEXT_FILTER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=|<=|>=|=|<|>| not in | in )\s*(.+?)\s*$")


def scalar(value: Any) -> common_pb2.Scalar:
    """A typed Scalar for a Python str, int, float or bool."""
    if isinstance(value, bool):
        return common_pb2.Scalar(bool_value=value)
    if isinstance(value, int):
        return common_pb2.Scalar(int_value=value)
    if isinstance(value, float):
        return common_pb2.Scalar(double_value=value)
    if isinstance(value, str):
        return common_pb2.Scalar(string_value=value)
    raise TypeError(f"filter values must be str, int, float or bool, got {type(value).__name__}")


def where(field: str, op: str, value: Any) -> common_pb2.Filter:
    """One filter clause; several clauses are ANDed by the server."""
    operator = OPERATORS.get(op.strip().lower() if op.strip() != "not in" else "not in")
    if operator is None:
        raise ValueError(f"unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
    if operator in (common_pb2.FILTER_OP_IN, common_pb2.FILTER_OP_NOT_IN):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise TypeError(f"{op!r} needs a list of values")
        return common_pb2.Filter(field=field, op=operator, values=[scalar(v) for v in value])
    return common_pb2.Filter(field=field, op=operator, value=scalar(value))


def parse(text: str) -> common_pb2.Filter:
    """A filter from text such as ``lang=en``, ``year>=2020`` or ``tag in a,b``."""
    match = _TEXT_FILTER.match(text)
    if match is None:
        raise ValueError(f"cannot read filter {text!r}; write it like lang=en, year>=2020 or 'tag in a,b'")
    field, op, raw = match.groups()
    op = op.strip()
    if op in ("in", "not in"):
        return where(field, op, [_typed(part.strip()) for part in raw.split(",")])
    return where(field, op, _typed(raw))


def _typed(raw: str) -> Any:
    """``raw`` as an int, float or bool when it reads as one; else the string (quotes removed)."""
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"" else raw
