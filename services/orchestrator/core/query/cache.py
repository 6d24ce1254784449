"""The two-level answer cache: L1 an in-process LRU with TTL (cachetools), L2 a shared store
(Redis, through the :class:`SharedAnswers` port) for every orchestrator replica. An L2 hit
fills L1. L2 trouble never reaches the client: the lookup becomes a miss and the store
counts the error.

Keys hash everything that changes an answer, including the collection's version, which
every ingest and delete bumps — a re-index never serves a stale answer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache
from prometheus_client import Counter

from ragmesh.vocabulary import CacheLevel
from services.orchestrator.core.stores import SharedAnswers

CACHE_LOOKUPS = Counter("ragmesh_cache_lookups_total", "Answer-cache lookups by result", ["result"])


def cache_key(material: dict[str, Any]) -> str:
    """A stable hash of the (JSON-serialisable) things an answer depends on."""
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class CacheCounts:
    """Lookup outcomes of this replica."""

    l1_hits: int = 0
    l2_hits: int = 0
    misses: int = 0

    @property
    def hit_rate(self) -> float:
        """Hits over lookups (0 without lookups)."""
        lookups = self.l1_hits + self.l2_hits + self.misses
        return (self.l1_hits + self.l2_hits) / lookups if lookups else 0.0


class AnswerCache:
    """Serialized answers by key, in L1 and (when Redis is configured) L2."""

    def __init__(self, shared: SharedAnswers, l1_entries: int, l1_ttl: float, l2_ttl: float) -> None:
        self.shared = shared
        self.l1: TTLCache[str, bytes] | None = TTLCache(l1_entries, l1_ttl) if l1_entries and l1_ttl else None
        self.l2_ttl = int(l2_ttl)
        self.counts = CacheCounts()

    async def get(self, key: str) -> tuple[CacheLevel, bytes] | None:
        """(level, value) of a hit — L1 or L2 — or None."""
        if self.l1 is not None and (value := self.l1.get(key)) is not None:
            self.counts.l1_hits += 1
            CACHE_LOOKUPS.labels(f"{CacheLevel.L1}_hit").inc()
            return CacheLevel.L1, value
        stored = await self.shared.get(key)
        if stored is not None:
            if self.l1 is not None:
                self.l1[key] = stored
            self.counts.l2_hits += 1
            CACHE_LOOKUPS.labels(f"{CacheLevel.L2}_hit").inc()
            return CacheLevel.L2, stored
        self.counts.misses += 1
        CACHE_LOOKUPS.labels("miss").inc()
        return None

    async def put(self, key: str, value: bytes) -> None:
        """Store in L1 and L2 (an L2 failure is counted by the store, not raised)."""
        if self.l1 is not None:
            self.l1[key] = value
        await self.shared.put(key, value, self.l2_ttl)
