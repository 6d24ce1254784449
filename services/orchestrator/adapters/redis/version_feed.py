"""Collection versions pushed to every replica by Redis pub/sub, so an L1 cache hit needs
no Redis round trip to know its answer is still current.

The replica that bumps a version publishes ``collection:version`` on one channel in the
same Lua step as the INCRBY; every replica's feed applies it to its local copy. Pub/sub
delivers at most once, so the local copy is trusted only for ``MAX_AGE_SECONDS`` after it
was last confirmed (by a message or a read) and only while the subscription is up; after
that, or while it is down, lookups read Redis as before. That bounds how long a replica
can miss another's re-ingest: milliseconds normally, ``MAX_AGE_SECONDS`` if a message is
lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

CHANNEL = "ragmesh:collection-versions"
#: How long a version copied from a message or a read is trusted without another read.
MAX_AGE_SECONDS = 5.0
#: KEYS: version key; ARGV: increment, channel, collection. Increments and announces at once.
BUMP_AND_PUBLISH = """
local version = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3] .. ':' .. version)
return version
"""


class VersionFeed:
    """Listens on the versions channel and hands each announcement to ``on_version``;
    reconnects after failures, calling ``on_reset`` whenever messages may have been missed."""

    def __init__(
        self,
        url: str,
        on_version: Callable[[str, int], None],
        on_reset: Callable[[], None],
        reconnect_seconds: float = 1.0,
    ) -> None:
        self.url = url
        self.on_version = on_version
        self.on_reset = on_reset
        self.reconnect_seconds = reconnect_seconds
        #: Subscribed now: local copies younger than MAX_AGE_SECONDS may be trusted.
        self.listening = False
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        """Listen until cancelled (cancellation always propagates)."""
        while True:
            try:
                await self._listen()
            except (aioredis.RedisError, OSError, TimeoutError) as error:
                log.warning("collection-version feed lost (%s); reading versions from Redis meanwhile", error)
            finally:
                self.listening = False
                self.subscribed.clear()
                self.on_reset()
            await asyncio.sleep(self.reconnect_seconds)

    async def _listen(self) -> None:
        client = aioredis.Redis.from_url(self.url, socket_connect_timeout=2.0, health_check_interval=2)
        try:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(CHANNEL)
            self.on_reset()  # anything read before the subscription may be stale already
            self.listening = True
            self.subscribed.set()
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    self._apply(message.get("data"))
        finally:
            await client.aclose()

    def _apply(self, data: object) -> None:
        text = data.decode() if isinstance(data, bytes) else str(data)
        collection, _, number = text.rpartition(":")
        if collection and number.isdigit():
            self.on_version(collection, int(number))
