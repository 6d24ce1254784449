"""The two-level answer cache: L1 an in-process LRU with TTL (cachetools), L2 Redis shared
by all orchestrator replicas. An L2 hit fills L1. Redis trouble never reaches the client:
the lookup becomes a miss and the error is counted.

Keys hash everything that changes an answer, including the collection's version, which
every ingest and delete bumps — a re-index never serves a stale answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from cachetools import TTLCache
from prometheus_client import Counter

from services.orchestrator.adapters.redis.guard import RedisGuard, as_bytes
from services.orchestrator.adapters.redis.version_feed import BUMP_AND_PUBLISH, CHANNEL, MAX_AGE_SECONDS, VersionFeed

CACHE_LOOKUPS = Counter("ragmesh_cache_lookups_total", "Answer-cache lookups by result", ["result"])
_KEY_PREFIX = "ragmesh:answer:v2:"
_VERSION_PREFIX = "ragmesh:collection-version:"
_UNREAD = object()  # what a failed Redis read returns


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

    def __init__(self, redis: RedisGuard, l1_entries: int, l1_ttl: float, l2_ttl: float) -> None:
        self.redis = redis
        self.l1: TTLCache[str, bytes] | None = TTLCache(l1_entries, l1_ttl) if l1_entries and l1_ttl else None
        self.l2_ttl = int(l2_ttl)
        self.counts = CacheCounts()

    async def get(self, key: str) -> tuple[int, bytes] | None:
        """(level, value) of a hit — level 1 or 2 — or None."""
        if self.l1 is not None and (value := self.l1.get(key)) is not None:
            self.counts.l1_hits += 1
            CACHE_LOOKUPS.labels("l1_hit").inc()
            return 1, value
        raw = await self.redis.call("cache-get", lambda r: r.get(_KEY_PREFIX + key), None)
        if raw is not None:
            stored = as_bytes(raw)
            if self.l1 is not None:
                self.l1[key] = stored
            self.counts.l2_hits += 1
            CACHE_LOOKUPS.labels("l2_hit").inc()
            return 2, stored
        self.counts.misses += 1
        CACHE_LOOKUPS.labels("miss").inc()
        return None

    async def put(self, key: str, value: bytes) -> None:
        """Store in L1 and L2 (an L2 failure is counted, not raised)."""
        if self.l1 is not None:
            self.l1[key] = value
        await self.redis.call("cache-put", lambda r: r.set(_KEY_PREFIX + key, value, ex=self.l2_ttl), None)


class CollectionVersions:
    """Per-collection version numbers that every ingest and delete bumps.

    With Redis the version is shared by all replicas (one replica's ingest invalidates
    every replica's cache, and keys agree across replicas so L2 is shared). A change made
    while Redis is unreachable is counted locally — this replica's keys change at once —
    and published to Redis as soon as it answers again: on this replica's next lookup or
    bump of any collection, or within a second by the background publisher.
    """

    def __init__(self, redis: RedisGuard, publish_every_seconds: float = 1.0) -> None:
        self.redis = redis
        self.shared: dict[str, int] = {}  # last value seen in Redis
        self.pending: dict[str, int] = {}  # changes not yet published to Redis
        self.publish_every_seconds = publish_every_seconds
        self._publishing = asyncio.Lock()  # two publishers must not add the same changes twice
        self._tasks: list[asyncio.Task[None]] = []
        #: Until when each local copy may be trusted without a read (see version_feed).
        self._fresh_until: dict[str, float] = {}
        self._announcements = 0  # counts feed messages, so a read that raced one is discarded
        self.feed = VersionFeed(redis.url, self._announced, self._fresh_until.clear) if redis.configured else None
        self.reads = 0

    async def get(self, collection: str) -> str:
        """The version of ``collection`` as a cache-key component: the local copy while the
        feed keeps it fresh, else read from Redis."""
        if any(self.pending.values()):
            await self.publish_pending()
        pending = self.pending.get(collection, 0)
        if not pending and not self._fresh(collection):
            await self._read(collection)
        return f"{self.shared.get(collection, 0)}" + (f"+{pending}" if pending else "")

    def _fresh(self, collection: str) -> bool:
        listening = self.feed is not None and self.feed.listening
        return listening and time.monotonic() < self._fresh_until.get(collection, 0.0)

    async def _read(self, collection: str) -> None:
        announcements = self._announcements
        self.reads += 1
        raw: object = await self.redis.call("version-get", lambda r: r.get(_VERSION_PREFIX + collection), _UNREAD)
        if raw is _UNREAD or announcements != self._announcements:
            return  # Redis failed, or a newer version was announced while this read was in flight
        self.shared[collection] = int(raw) if isinstance(raw, bytes | str) else 0
        self._fresh_until[collection] = time.monotonic() + MAX_AGE_SECONDS

    def _announced(self, collection: str, version: int) -> None:
        self._announcements += 1
        self.shared[collection] = version
        self._fresh_until[collection] = time.monotonic() + MAX_AGE_SECONDS

    async def bump(self, collection: str) -> int:
        """Record a change to ``collection``; returns its new version number."""
        self.pending[collection] = self.pending.get(collection, 0) + 1
        await self.publish_pending()
        return self.number(collection)

    async def publish_pending(self) -> None:
        """Add every unpublished change to the shared versions (no-op while Redis is away)."""
        async with self._publishing:
            for collection, count in list(self.pending.items()):
                if not count:
                    continue
                shared = await self.redis.call("version-bump", _increment(collection, count), None)
                if shared is None:
                    return  # Redis is unreachable: try again later
                self.shared[collection] = int(shared)
                self.pending[collection] -= count  # changes made meanwhile stay pending

    def number(self, collection: str) -> int:
        """The version to show callers."""
        return self.shared.get(collection, 0) + self.pending.get(collection, 0)

    def start(self) -> None:
        """Publish changes left pending by a Redis outage even if no request comes, and
        listen to other replicas' changes."""
        if self.redis.configured and self.feed is not None:
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._publish_periodically()), loop.create_task(self.feed.run())]

    async def close(self) -> None:
        """Stop the background publisher and the feed (bounded: they only await Redis calls
        that have timeouts)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _publish_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.publish_every_seconds)
            if any(self.pending.values()):
                await self.publish_pending()


def _increment(collection: str, count: int) -> Callable[[aioredis.Redis], Awaitable[int]]:
    async def increment(r: aioredis.Redis) -> int:
        keys = [_VERSION_PREFIX + collection]
        return int(await r.eval(BUMP_AND_PUBLISH, 1, *keys, count, CHANNEL, collection))

    return increment
