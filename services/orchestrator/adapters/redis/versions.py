"""Per-collection version numbers in Redis, shared by every replica (the core's
:class:`CollectionVersions` port): every ingest and delete bumps its collection's version,
and cache keys include it, so a re-index never serves a stale answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from services.orchestrator.adapters.redis.guard import RedisGuard
from services.orchestrator.adapters.redis.version_feed import BUMP_AND_PUBLISH, CHANNEL, MAX_AGE_SECONDS, VersionFeed

VERSION_PREFIX = "ragmesh:collection-version:"
_UNREAD = object()  # what a failed Redis read returns


class RedisCollectionVersions:
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
        raw: object = await self.redis.call("version-get", lambda r: r.get(VERSION_PREFIX + collection), _UNREAD)
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
        keys = [VERSION_PREFIX + collection]
        return int(await r.eval(BUMP_AND_PUBLISH, 1, *keys, count, CHANNEL, collection))

    return increment
