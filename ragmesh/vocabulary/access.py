"""Access lists: who may read a document, spelled the same by the key file, the clients, the
sources and the retriever.

A principal is ``user:NAME`` or ``group:NAME`` (NAME: letters, digits and ``. _ @ -``, 1 to
128 characters). A document's access list holds principals; a document without one is
stored with the :data:`PUBLIC` marker alone and is visible to the whole tenant. A caller
holds :data:`PUBLIC`, ``user:<its user>`` and ``group:<g>`` for each of its groups, so one
``ARRAY_CONTAINS_ANY`` clause on the ``access`` column answers "no list, or one of mine".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from ragmesh.vocabulary.limits import MAX_ACCESS_PRINCIPALS

#: The access column of the retriever's collections.
ACCESS_FIELD = "access"
#: The principal every caller holds: a document whose list is this alone is public.
PUBLIC = "*"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
_PRINCIPAL = re.compile(r"(user|group):" + _NAME.pattern)


class AccessError(ValueError):
    """An access list or a name that cannot be used; the message says which and why."""


def check_name(kind: str, name: str) -> str:
    """A user or group name; AccessError naming ``kind`` otherwise."""
    if not _NAME.fullmatch(name):
        raise AccessError(
            f"{kind} {name[:80]!r} is invalid: use 1-128 letters, digits and '.', '_', '@', '-', starting with one "
            "letter or digit"
        )
    return name


def check_principal(text: str) -> str:
    """``user:NAME`` or ``group:NAME``; AccessError otherwise."""
    if not _PRINCIPAL.fullmatch(text):
        raise AccessError(f"principal {text[:80]!r} is invalid: use user:NAME or group:NAME")
    return text


def access_list(principals: Iterable[str]) -> tuple[str, ...]:
    """A document's access list as stored: its principals checked, sorted and unique, or
    ``(PUBLIC,)`` when it has none; AccessError on a bad one or too many."""
    unique = sorted({check_principal(p.strip()) for p in principals if p.strip() and p.strip() != PUBLIC})
    if len(unique) > MAX_ACCESS_PRINCIPALS:
        raise AccessError(f"an access list holds at most {MAX_ACCESS_PRINCIPALS} principals, got {len(unique)}")
    return tuple(unique) or (PUBLIC,)


def caller_principals(user: str, groups: Iterable[str]) -> tuple[str, ...]:
    """What a caller holds: PUBLIC, its user and its groups."""
    held = [PUBLIC]
    if user:
        held.append(f"user:{user}")
    held.extend(f"group:{group}" for group in sorted(set(groups)))
    return tuple(held)


def principals_digest(principals: Iterable[str]) -> str:
    """A short digest of a principal set (for cache keys): equal sets, equal digests."""
    return hashlib.sha256("\n".join(sorted(set(principals))).encode()).hexdigest()[:16]
