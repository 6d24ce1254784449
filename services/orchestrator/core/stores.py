"""What the core needs besides the components: shared state and a view of the components'
health, as small protocols over domain types. :mod:`services.orchestrator.adapters.redis`
implements the stores over Redis, :mod:`services.orchestrator.adapters.components` the
monitor; the unit tests use in-memory fakes. (Background work's ports are
:mod:`services.orchestrator.core.jobs.ports`.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from services.orchestrator.core.domain import ComponentHealth


class SharedAnswers(Protocol):
    """The answer cache's second level, shared by every replica."""

    @property
    def enabled(self) -> bool:
        """Whether a shared store is configured at all."""
        ...

    @property
    def errors(self) -> int:
        """Calls that failed (each one a miss to the caller)."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The stored answer, or None (a miss, or a failure counted in ``errors``)."""
        ...

    async def put(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """Store an answer; a failure is counted, never raised."""
        ...


class CollectionVersions(Protocol):
    """Per-collection version numbers that every ingest and delete bumps."""

    async def get(self, collection: str) -> str:
        """The version as a cache-key component."""
        ...

    async def bump(self, collection: str) -> int:
        """Record a change to ``collection``; returns its new version number."""
        ...

    def number(self, collection: str) -> int:
        """The version to show callers."""
        ...

    def start(self) -> None:
        """Start any background work (publishing, listening to other replicas)."""
        ...

    async def close(self) -> None:
        """Stop the background work."""
        ...


@dataclass
class CallCounts:
    """Calls to one component and how many failed (counted as they happen)."""

    requests: int = 0
    errors: int = 0


class Monitor(Protocol):
    """The components as an operator sees them: health and call counts."""

    def call_counts(self) -> Mapping[str, CallCounts]:
        """Calls per component since this replica started."""
        ...

    async def health(self) -> list[ComponentHealth]:
        """Each component's health."""
        ...
