"""Who is calling, and what they may read or write: the principal every transport binds to
the request it handles, and the checks the orchestrator's core makes on every read and write.

No transport here: :mod:`services.common.auth` turns a call's headers into a principal (gRPC
interceptor, HTTP), the core calls :func:`current_principal` and :func:`authorize`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from dataclasses import dataclass

from ragmesh.vocabulary.access import caller_principals, principals_digest
from services.common.errors import PermissionDenied


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant and the collections its key grants."""

    tenant: str
    #: Collection names or prefixes ending in ``*``; ``("*",)`` is every collection.
    collections: tuple[str, ...]
    write: bool
    #: Non-secret id of the key (its hash's first 8 hex digits), for logs; "" when auth is off.
    key_id: str = ""
    #: The key's holder and groups, checked against documents' access lists.
    user: str = ""
    groups: tuple[str, ...] = ()
    #: Every document is visible whatever its access list (auth off: development).
    sees_all: bool = False

    def principals(self) -> tuple[str, ...]:
        """What this caller holds in access lists: ``*`` (public), its user, its groups."""
        return caller_principals(self.user, self.groups)

    def may(self, collection: str, write: bool = False) -> bool:
        """Whether this principal may read (or, with ``write``, change) ``collection``."""
        if write and not self.write:
            return False
        return any(collection.startswith(p[:-1]) if p.endswith("*") else collection == p for p in self.collections)

    def visible(self, collections: Iterable[str]) -> list[str]:
        """The names among ``collections`` this principal may read (for listings)."""
        return [c for c in collections if self.may(c)]


#: The caller when auth is off: one tenant-less principal that may do anything.
ANONYMOUS = Principal(tenant="", collections=("*",), write=True, sees_all=True)
_PRINCIPAL: contextvars.ContextVar[Principal] = contextvars.ContextVar("ragmesh_principal", default=ANONYMOUS)


def current_principal() -> Principal:
    """The principal of the call being handled (ANONYMOUS outside one, or with auth off)."""
    return _PRINCIPAL.get()


def bind_principal(principal: Principal) -> None:
    """Make ``principal`` the caller of the work being done in this context (a transport
    after authenticating a request; the worker before it runs a batch for its submitter)."""
    _PRINCIPAL.set(principal)


def authorize(principal: Principal, collection: str, write: bool = False) -> None:
    """PermissionDenied unless ``principal`` may read (or write) ``collection``."""
    if principal.may(collection, write):
        return
    if write and not principal.write and principal.may(collection):
        raise PermissionDenied(f"tenant {principal.tenant} has read-only access to collection {collection!r}")
    raise PermissionDenied(f"tenant {principal.tenant} may not use collection {collection!r}")


def scope_key(principal: Principal) -> str:
    """The caller's part of cache keys ("" with auth off): its tenant and a digest of the
    principals it holds, so that an answer is never served to another tenant, nor to a
    caller who could not read its sources."""
    if principal.sees_all:
        return principal.tenant
    return f"{principal.tenant}/{principals_digest(principal.principals())}"
