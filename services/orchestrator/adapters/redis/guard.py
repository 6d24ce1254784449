"""Guarded access to Redis: every call bounded by a timeout, failures counted, and a short
back-off after a failure so a Redis outage costs one timeout, not one per query.

The answer cache, collection versions and ingestion jobs all go through this one guard.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from prometheus_client import Counter

from services.common.errors import Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

REDIS_ERRORS = Counter("ragmesh_orchestrator_redis_errors_total", "Redis calls that failed or timed out", ["use"])


def as_bytes(value: bytes | str) -> bytes:
    """Redis replies as bytes (the client returns bytes, its types allow str)."""
    return value if isinstance(value, bytes) else value.encode()


class RedisGuard:
    """A Redis client (or none) with timeouts, error counting and back-off."""

    def __init__(self, url: str, timeout_seconds: float, backoff_seconds: float) -> None:
        self.client: aioredis.Redis | None = (
            aioredis.Redis.from_url(url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds)
            if url
            else None
        )
        self.url = url
        self.timeout = timeout_seconds
        self.backoff = backoff_seconds
        self.errors = 0
        self._skip_until = 0.0

    @property
    def configured(self) -> bool:
        """Whether a Redis URL was given."""
        return self.client is not None

    @property
    def available(self) -> bool:
        """Configured and not backing off after a recent failure."""
        return self.client is not None and time.monotonic() >= self._skip_until

    async def call(self, use: str, operation: Callable[[aioredis.Redis], Awaitable[T]], default: T) -> T:
        """Run ``operation``; on any failure (or when unavailable) count it and return ``default``."""
        try:
            return await self.call_or_raise(use, operation)
        except Unavailable:
            return default

    async def call_or_raise(self, use: str, operation: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """Run ``operation``; on failure count it and raise Unavailable."""
        if self.client is None or not self.available:
            raise Unavailable("Redis is not configured" if self.client is None else "Redis is backing off")
        try:
            return await asyncio.wait_for(operation(self.client), self.timeout)
        except (TimeoutError, aioredis.RedisError, OSError) as error:
            self.errors += 1
            REDIS_ERRORS.labels(use).inc()
            self._skip_until = time.monotonic() + self.backoff
            log.warning("redis %s failed (%s); skipping Redis for %.1fs", use, error, self.backoff)
            raise Unavailable(f"Redis {use} failed: {type(error).__name__}") from error

    async def close(self) -> None:
        """Close the connection pool."""
        if self.client is not None:
            await self.client.aclose()
