"""The answer cache's L2 in Redis (the :class:`SharedAnswers` port): one key per answer with
a TTL, every call through the guard, so Redis trouble is a miss and a counted error."""

from __future__ import annotations

from services.orchestrator.adapters.redis.guard import RedisGuard, as_bytes

KEY_PREFIX = "ragmesh:answer:v2:"


class RedisAnswers:
    """Serialized answers by key in Redis."""

    def __init__(self, guard: RedisGuard) -> None:
        self.guard = guard

    @property
    def enabled(self) -> bool:
        return self.guard.configured

    @property
    def errors(self) -> int:
        return self.guard.errors

    async def get(self, key: str) -> bytes | None:
        raw = await self.guard.call("cache-get", lambda r: r.get(KEY_PREFIX + key), None)
        return None if raw is None else as_bytes(raw)

    async def put(self, key: str, value: bytes, ttl_seconds: int) -> None:
        await self.guard.call("cache-put", lambda r: r.set(KEY_PREFIX + key, value, ex=ttl_seconds), None)
