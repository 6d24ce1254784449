"""API keys: how they are made, how their hashes are stored, and the reloadable key set.

A key is ``rmk_`` followed by 43 URL-safe characters (256 random bits). Only its SHA-256
digest is stored: a key has so much entropy that a slow password hash would add nothing,
and a fast one keeps every call cheap. Grants live in a key file (TOML or JSON)::

    [[keys]]
    sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    tenant = "acme"
    collections = ["acme_*", "shared"]   # names, or prefixes ending in "*"
    write = true                         # ingest, delete, jobs; reading is always allowed
    user = "alice"                       # optional: the holder, for per-document access lists
    groups = ["hr"]                      # optional: the holder's groups

or in one environment variable, entries separated by ``;`` or newlines::

    <sha256 hex>:<tenant>:<collection>,<prefix>*,...:<r|rw>[:<user>[:<group>,<group>...]]

:class:`KeyStore` holds the union of both and reloads the file when its mtime changes
(checked at most once per ``reload_seconds``) or when :meth:`KeyStore.reload` is called
(SIGHUP). A file that fails to parse on reload keeps the previous keys and logs why.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragmesh.vocabulary.access import AccessError, check_name
from ragmesh.vocabulary.names import IDENTIFIER

log = logging.getLogger(__name__)

KEY_PREFIX = "rmk_"
_HEX = frozenset("0123456789abcdef")


class KeyFileError(ValueError):
    """A key file or key variable cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Grant:
    """What one key may do: its tenant, the collections it may touch, and how."""

    #: SHA-256 hex digest of the key (the key itself is never stored).
    sha256: str
    tenant: str
    #: Collection names, or prefixes ending in ``*`` (``"*"`` alone: every collection).
    collections: tuple[str, ...]
    write: bool = False
    #: The key's holder and groups: what per-document access lists are checked against.
    user: str = ""
    groups: tuple[str, ...] = ()

    @property
    def key_id(self) -> str:
        """A short, non-secret name of the key for logs: the first 8 hex digits of its hash."""
        return self.sha256[:8]


def new_key() -> str:
    """A fresh random API key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    """The SHA-256 hex digest of ``key`` (what a key file stores)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def toml_entry(grant: Grant) -> str:
    """The key-file (TOML) lines granting ``grant``."""
    names = ", ".join(json.dumps(c) for c in grant.collections)
    entry = (
        f'[[keys]]\nsha256 = "{grant.sha256}"\ntenant = {json.dumps(grant.tenant)}\n'
        f"collections = [{names}]\nwrite = {'true' if grant.write else 'false'}\n"
    )
    if grant.user:
        entry += f"user = {json.dumps(grant.user)}\n"
    if grant.groups:
        entry += f"groups = [{', '.join(json.dumps(g) for g in grant.groups)}]\n"
    return entry


def env_entry(grant: Grant) -> str:
    """The same grant as one entry of the key variable."""
    entry = f"{grant.sha256}:{grant.tenant}:{','.join(grant.collections)}:{'rw' if grant.write else 'r'}"
    if grant.user or grant.groups:
        entry += f":{grant.user}"
    if grant.groups:
        entry += f":{','.join(grant.groups)}"
    return entry


def parse_holder(where: str, user: Any, groups: Any) -> tuple[str, tuple[str, ...]]:
    """A key's user ("" for none) and groups (a list, or a comma-separated string)."""
    items = [g.strip() for g in groups.split(",") if g.strip()] if isinstance(groups, str) else groups
    if not isinstance(user, str) or not isinstance(items, list) or not all(isinstance(g, str) for g in items):
        raise KeyFileError(f"{where}: user must be a string and groups a list of strings")
    try:
        checked = tuple(sorted({check_name("group", g) for g in items}))
        return (check_name("user", user) if user else ""), checked
    except AccessError as error:
        raise KeyFileError(f"{where}: {error}") from None


def parse_collections(where: str, value: Any) -> tuple[str, ...]:
    """Collection patterns: a list, or a comma-separated string, of names or ``prefix*``."""
    items = [part.strip() for part in value.split(",")] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise KeyFileError(f"{where}: collections must be a non-empty list of names or prefixes ending in '*'")
    for item in items:
        base = item[:-1] if item.endswith("*") else item
        if item != "*" and not (IDENTIFIER.fullmatch(base) or (item.endswith("*") and base == "")):
            raise KeyFileError(f"{where}: {item!r} is not a collection name or a prefix ending in '*'")
    return tuple(items)


def checked_grant(
    where: str, sha256: Any, tenant: Any, collections: Any, write: Any, *, user: Any = "", groups: Any = ()
) -> Grant:
    """A Grant from raw values, KeyFileError naming ``where`` when one is unusable."""
    if not isinstance(sha256, str) or len(sha256) != 64 or not set(sha256) <= _HEX:
        raise KeyFileError(f"{where}: sha256 must be 64 lower-case hex digits (the key's SHA-256, not the key)")
    if not isinstance(tenant, str) or not IDENTIFIER.fullmatch(tenant):
        raise KeyFileError(f"{where}: tenant must be a letter then letters, digits or '_', got {tenant!r}")
    if not isinstance(write, bool):
        raise KeyFileError(f"{where}: write must be true or false")
    holder, member_of = parse_holder(where, user, list(groups) if isinstance(groups, tuple) else groups)
    return Grant(sha256, tenant, parse_collections(where, collections), write, holder, member_of)


def parse_file(path: Path) -> list[Grant]:
    """The grants of a TOML or JSON key file (``{"keys": [{sha256, tenant, collections, write}]}``)."""
    text = path.read_text(encoding="utf-8")
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        raise KeyFileError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {error}") from None
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise KeyFileError(f"{path}: expected a list 'keys' of tables (sha256, tenant, collections, write)")
    grants = []
    for index, entry in enumerate(entries):
        where = f"{path}: keys[{index}]"
        if not isinstance(entry, dict):
            raise KeyFileError(f"{where}: expected a table")
        unknown = set(entry) - {"sha256", "tenant", "collections", "write", "user", "groups"}
        if unknown:
            raise KeyFileError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        sha256, tenant, collections = entry.get("sha256"), entry.get("tenant"), entry.get("collections")
        write, user, groups = entry.get("write", False), entry.get("user", ""), entry.get("groups", [])
        grants.append(checked_grant(where, sha256, tenant, collections, write, user=user, groups=groups))
    return grants


def parse_env(variable: str, text: str) -> list[Grant]:
    """The grants of the key variable (``hash:tenant:collections:r|rw`` entries)."""
    grants = []
    for index, entry in enumerate(e.strip() for e in text.replace("\n", ";").split(";")):
        if not entry:
            continue
        parts = entry.split(":")
        where = f"{variable}: entry {index + 1}"
        if not 4 <= len(parts) <= 6 or parts[3] not in ("r", "rw"):
            raise KeyFileError(f"{where}: expected <sha256>:<tenant>:<collections>:<r|rw>[:<user>[:<groups>]]")
        user, groups = (parts[4] if len(parts) > 4 else ""), (parts[5] if len(parts) > 5 else "")
        grants.append(checked_grant(where, parts[0], parts[1], parts[2], parts[3] == "rw", user=user, groups=groups))
    return grants


class KeyStore:
    """The grants in force: from a key file (reloaded on change) and/or a variable."""

    def __init__(
        self,
        path: Path | None,
        env_grants: Sequence[Grant] = (),
        reload_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._env = tuple(env_grants)
        self._reload_seconds = reload_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._mtime: int | None = None
        self._checked = clock()
        self._grants: tuple[Grant, ...] = ()
        self._load(initial=True)

    def _load(self, initial: bool = False) -> None:
        file_grants: list[Grant] = []
        if self.path is not None:
            try:
                stamp = os.stat(self.path).st_mtime_ns
                file_grants = parse_file(self.path)
                _check_unique([*self._env, *file_grants])
            except (OSError, KeyFileError) as error:
                if initial:
                    raise KeyFileError(str(error)) from None
                log.error("API key file not reloaded, keeping the previous keys: %s", error)
                return
            self._mtime = stamp
        else:
            _check_unique(self._env)
        self._grants = self._env + tuple(file_grants)
        if not initial:
            log.info("API keys reloaded: %d key(s) for %d tenant(s)", len(self._grants), len(self.tenants()))

    def reload(self) -> None:
        """Read the key file again now (SIGHUP)."""
        with self._lock:
            self._load()

    def refresh(self) -> None:
        """Reload when the file's mtime changed; the file is looked at once per interval at most."""
        if self.path is None or self._clock() - self._checked < self._reload_seconds:
            return
        with self._lock:
            self._checked = self._clock()
            try:
                changed = os.stat(self.path).st_mtime_ns != self._mtime
            except OSError as error:
                log.error("API key file unreadable, keeping the previous keys: %s", error)
                return
            if changed:
                self._load()

    def find(self, key: str) -> Grant | None:
        """The grant of ``key``, compared in constant time against every stored hash.

        Every entry is compared (no early exit) so the time taken does not tell which
        entry, or whether any, matched.
        """
        presented = digest(key).encode()
        found: Grant | None = None
        for grant in self._grants:
            if hmac.compare_digest(presented, grant.sha256.encode()):
                found = grant
        return found

    def tenants(self) -> set[str]:
        """Every tenant that has a key."""
        return {g.tenant for g in self._grants}

    def __len__(self) -> int:
        return len(self._grants)


def _check_unique(grants: Iterable[Grant]) -> None:
    seen: dict[str, str] = {}
    for grant in grants:
        if grant.sha256 in seen:
            raise KeyFileError(f"key {grant.key_id}... is listed twice (tenants {seen[grant.sha256]}, {grant.tenant})")
        seen[grant.sha256] = grant.tenant
