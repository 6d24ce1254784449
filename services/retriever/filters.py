"""Structured filter clauses turned into Milvus boolean expressions, safely.

Safety is by construction, not by filtering bad input:

- field names never reach the expression as client text beyond a checked key: a field is
  either ``document_id`` or ``chunk_id`` (schema columns) or a metadata key matching
  ``[A-Za-z][A-Za-z0-9_]{0,63}``, written as ``metadata["<key>"]`` — a key with no quote,
  bracket, backslash or space cannot end the string or open another term;
- operators come from an enum, so the client picks one of eight fixed tokens;
- values are rendered by type: integers with ``int``, floats with ``repr`` (finite only),
  booleans as ``true``/``false``, strings as one double-quoted literal in which every
  backslash, quote, newline, carriage return and tab is escaped (other control characters
  are refused), so a string value can only ever be one string literal.

Why literals and not ``filter_params`` templates: pymilvus 3 sends templates, and a Milvus
server fills them in, but milvus-lite 3.2 does not implement them (``{x}`` is a parse error
there). One expression syntax that both accept keeps one code path.

The ``access`` column (a chunk's access list, an ARRAY of principals) takes
ARRAY_CONTAINS_ANY only, with strings; no other field takes that operator. How it is
evaluated depends on the store (``access``): on a Milvus server, natively —
``ARRAY_CONTAINS_ANY(access, ["*", "group:hr"])``, with an INVERTED index on the array
(``"array"``); on milvus-lite, which can index no ARRAY field and evaluates array functions row
by row (7-9x the time of an unfiltered search on 2,000 chunks, measured), over the
``access_terms`` column that stores the same list as ``|<term>|<term>|`` with each term a hex
digest of a principal, as ``access_terms like "%|<term>|%" or ...`` (``"terms"``: hex digits hold
no LIKE wildcard, so a principal cannot match another). A collection made before access lists
has neither column: its chunks are all public, so the clause is true when the values hold
``*`` and matches nothing otherwise (``"none"``).

Semantics worth knowing: LT/LE/GT/GE take numbers only (the contract says so, and ordering
strings by code point is rarely what a caller means); booleans take EQ/NE only;
``document_id`` and ``chunk_id`` take strings only. Like SQL's NULL, a chunk whose metadata lacks the key
matches no clause on that key — not even NE or NOT_IN. Metadata IN/NOT_IN are written as
OR/AND chains of equalities because milvus-lite rejects ``in`` on a JSON path.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ragmesh.vocabulary import FilterOp
from ragmesh.vocabulary.access import ACCESS_FIELD, PUBLIC
from ragmesh.vocabulary.limits import ID_BYTES, MAX_FILTER_CLAUSES, MAX_IN_VALUES
from ragmesh.vocabulary.names import IDENTIFIER
from ragmesh.vocabulary.values import Scalar
from services.common.errors import InvalidArgument

DOCUMENT_ID = "document_id"
CHUNK_ID = "chunk_id"
#: Schema columns a clause may name directly; every other field is a metadata key.
ID_COLUMNS = (DOCUMENT_ID, CHUNK_ID)
MAX_STRING_CHARS = 4096
MAX_EXPRESSION_CHARS = 1 << 20
_INT64 = (-(1 << 63), (1 << 63) - 1)
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}

_ORDERING = frozenset(op for op in FilterOp if op.ordering)
_LISTS = frozenset(op for op in FilterOp if op.takes_list)
#: An expression no chunk matches (chunk ids are never empty).
NOTHING = f'{CHUNK_ID} == ""'
#: The access list again, as ``|<term>|<term>|`` (see above).
ACCESS_TERMS = "access_terms"
#: How the store evaluates the access clause (see above).
AccessMode = Literal["array", "terms", "none"]


def access_term(principal: str) -> str:
    """A principal's term in ``access_terms``: 16 hex digits of its SHA-256."""
    return hashlib.sha256(principal.encode()).hexdigest()[:16]


def access_terms(access: Sequence[str]) -> str:
    """The ``access_terms`` value of an access list."""
    return "|" + "|".join(access_term(principal) for principal in access) + "|"


@dataclass(frozen=True)
class Clause:
    """``field op value`` (or ``field op values`` for IN / NOT_IN); None marks an unset value."""

    field: str
    op: FilterOp | None
    value: Scalar | None = None
    values: tuple[Scalar | None, ...] = ()


def build_expression(clauses: Sequence[Clause], access: AccessMode = "array") -> str:
    """The clauses ANDed as one Milvus expression ("" for none); InvalidArgument if any is bad.
    ``access``: how the store evaluates a clause on the ``access`` column (see above)."""
    if len(clauses) > MAX_FILTER_CLAUSES:
        raise InvalidArgument(f"{len(clauses)} filters; at most {MAX_FILTER_CLAUSES} are allowed")
    parts = [_clause(f"filters[{i}]", clause, access) for i, clause in enumerate(clauses)]
    expression = " and ".join(f"({part})" for part in parts if part)
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise InvalidArgument(f"filters are too large ({len(expression)} characters of expression)")
    return expression


def document_ids_expression(document_ids: Sequence[str]) -> str:
    """``document_id in [...]`` for a non-empty list of document ids."""
    if not document_ids:
        raise InvalidArgument("document_ids is empty")
    if len(document_ids) > MAX_IN_VALUES:
        raise InvalidArgument(f"{len(document_ids)} document_ids; at most {MAX_IN_VALUES} per call")
    for i, document_id in enumerate(document_ids):
        check_id(f"document_ids[{i}]", document_id)
    literals = ", ".join(_string(doc) for doc in dict.fromkeys(document_ids))
    return f"{DOCUMENT_ID} in [{literals}]"


def check_id(where: str, value: str) -> None:
    """A chunk or document id: non-empty, at most ID_BYTES of UTF-8."""
    if not value:
        raise InvalidArgument(f"{where} is empty")
    if len(value.encode()) > ID_BYTES:
        raise InvalidArgument(f"{where} is longer than {ID_BYTES} bytes")
    _check_controls(where, value)


def _check_controls(where: str, value: str) -> None:
    # Tab, newline and carriage return are escaped; other control characters have no
    # escape both milvus-lite and a Milvus server read the same way, so they are refused.
    if any(unicodedata.category(ch) == "Cc" and ch not in _ESCAPES for ch in value):
        raise InvalidArgument(f"{where} contains control characters")


def _access_clause(where: str, clause: Clause, access: AccessMode) -> str:
    """The access clause as the store evaluates it; on a collection without access lists, true
    ("") when the values hold the public marker, else no chunk."""
    if clause.op is not FilterOp.ARRAY_CONTAINS_ANY or clause.value is not None:
        raise InvalidArgument(f"{where}: {ACCESS_FIELD} takes ARRAY_CONTAINS_ANY with values (principals) only")
    if not clause.values or len(clause.values) > MAX_IN_VALUES:
        raise InvalidArgument(f"{where}: ARRAY_CONTAINS_ANY needs 1 to {MAX_IN_VALUES} values")
    if not all(isinstance(value, str) for value in clause.values):
        raise InvalidArgument(f"{where}: {ACCESS_FIELD} is compared with strings (principals) only")
    values = list(dict.fromkeys(str(value) for value in clause.values))
    literals = [_literal(where, value, False) for value in values]
    if access == "none":
        return "" if PUBLIC in values else NOTHING
    if access == "terms":
        return " or ".join(f'{ACCESS_TERMS} like "%|{access_term(value)}|%"' for value in values)
    return f"ARRAY_CONTAINS_ANY({ACCESS_FIELD}, [{', '.join(literals)}])"


def _clause(where: str, clause: Clause, access: AccessMode = "array") -> str:
    if clause.field == ACCESS_FIELD:
        return _access_clause(where, clause, access)
    if clause.op is FilterOp.ARRAY_CONTAINS_ANY:
        raise InvalidArgument(f"{where}: ARRAY_CONTAINS_ANY applies to the {ACCESS_FIELD} column only")
    column = clause.field if clause.field in ID_COLUMNS else None
    if column is None and not IDENTIFIER.fullmatch(clause.field):
        raise InvalidArgument(
            f"{where}: field {clause.field!r} is not allowed; use document_id, chunk_id, access or a metadata key of "
            "letters, digits and underscores that starts with a letter (at most 64 characters)"
        )
    field = column or f'metadata["{clause.field}"]'
    if clause.op is None:
        raise InvalidArgument(f"{where}: op is missing; use EQ, NE, LT, LE, GT, GE, IN, NOT_IN or ARRAY_CONTAINS_ANY")
    if clause.op in _LISTS:
        return _list_clause(where, clause, field, column)
    if clause.values:
        raise InvalidArgument(f"{where}: {clause.op.name} takes value, not values")
    if clause.value is None:
        raise InvalidArgument(f"{where}: {clause.op.name} needs a value")
    _check_kind(where, clause.op, _kind(clause.value), column)
    return f"{field} {clause.op.value} {_literal(where, clause.value, column is not None)}"


def _list_clause(where: str, clause: Clause, field: str, column: str | None) -> str:
    assert clause.op is not None
    if clause.value is not None:
        raise InvalidArgument(f"{where}: {clause.op.name} takes values, not value")
    if not clause.values:
        raise InvalidArgument(f"{where}: {clause.op.name} needs at least one value")
    if len(clause.values) > MAX_IN_VALUES:
        raise InvalidArgument(f"{where}: {len(clause.values)} values; at most {MAX_IN_VALUES}")
    if any(value is None for value in clause.values):
        raise InvalidArgument(f"{where}: every value needs a kind (string, int, double or bool)")
    values = [value for value in clause.values if value is not None]
    kinds = {_kind(value) for value in values}
    if len(kinds) > 1:
        raise InvalidArgument(f"{where}: values mix {' and '.join(sorted(kinds))}; use one kind")
    _check_kind(where, clause.op, kinds.pop(), column)
    literals = [_literal(where, value, column is not None) for value in values]
    literals = list(dict.fromkeys(literals))
    if column is not None:
        return f"{field} {clause.op.value} [{', '.join(literals)}]"
    # milvus-lite has no `in` on JSON paths: spell it as a chain (same meaning on a server).
    if clause.op is FilterOp.IN:
        return " or ".join(f"{field} == {literal}" for literal in literals)
    return " and ".join(f"{field} != {literal}" for literal in literals)


def _kind(value: Scalar) -> str:
    # bool first: in Python a bool is also an int.
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _check_kind(where: str, op: FilterOp, kind: str, column: str | None) -> None:
    if column is not None and kind != "string":
        raise InvalidArgument(f"{where}: {column} is compared with strings only, got a {kind}")
    if op in _ORDERING and kind != "number":
        raise InvalidArgument(f"{where}: {op.name} compares numbers only, got a {kind}")
    if kind == "bool" and op not in (FilterOp.EQ, FilterOp.NE):
        raise InvalidArgument(f"{where}: a bool takes EQ or NE only, not {op.name}")


def _literal(where: str, value: Scalar, is_id: bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise InvalidArgument(f"{where}: integer {value} is outside the 64-bit range")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(f"{where}: {value} is not a finite number")
        return repr(value)
    if is_id:
        check_id(f"{where}: an id", value)
    elif len(value) > MAX_STRING_CHARS:
        raise InvalidArgument(f"{where}: a string value is longer than {MAX_STRING_CHARS} characters")
    _check_controls(f"{where}: a string value", value)
    return _string(value)


def _string(value: str) -> str:
    """One double-quoted literal; the escapes are those Milvus (Go) and milvus-lite share."""
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'
