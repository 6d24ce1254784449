"""Per-document permissions: the clause every read carries for its caller.

A document's access list is stored on its chunks (the retriever's ``access`` column; ``*``
alone for a public document). A caller holds ``*``, ``user:<its user>`` and ``group:<g>``
for each of its groups (:meth:`Principal.principals`), so "no list, or one of mine" is one
``access ARRAY_CONTAINS_ANY [...]`` clause, evaluated by the retriever inside the search:
top-k stays full for the caller, and nothing it may not read is fetched at all.
"""

from __future__ import annotations

from ragmesh.vocabulary import FilterOp
from ragmesh.vocabulary.access import ACCESS_FIELD, AccessError, access_list
from services.common.errors import InvalidArgument
from services.common.principal import Principal
from services.orchestrator.core.domain import Filter


def access_filters(principal: Principal) -> tuple[Filter, ...]:
    """The clause limiting a read to what ``principal`` may see (none when auth is off)."""
    if principal.sees_all:
        return ()
    return (Filter(ACCESS_FIELD, FilterOp.ARRAY_CONTAINS_ANY, values=principal.principals()),)


def checked_access(access: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """An access list as stored (``("*",)`` when empty); InvalidArgument naming the problem."""
    try:
        return access_list(access)
    except AccessError as error:
        raise InvalidArgument(f"access: {error}") from None
