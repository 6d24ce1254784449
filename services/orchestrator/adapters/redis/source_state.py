"""What syncs keep between runs, in Redis (the core's :class:`SourceStates` port), shared by
every worker: the one-sync-at-a-time lock (``SET NX`` with an expiry, so a dead worker's lock
goes), the change tokens of the last sync (a hash), and the last sync's status (JSON)."""

from __future__ import annotations

from typing import Any, cast

import redis.asyncio as aioredis

from services.orchestrator.adapters.redis.guard import RedisGuard, as_bytes
from services.orchestrator.core.codec import from_json, to_json
from services.orchestrator.core.sources.model import SyncStatus

PREFIX = "ragmesh:source:v1:"
FORMAT = 1
#: Compare-and-delete: only the job holding the lock releases it.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class RedisSourceStates:
    """Sync locks, tokens and statuses in Redis; every failure raises Unavailable (the guard)."""

    def __init__(self, guard: RedisGuard) -> None:
        self.guard = guard

    async def claim(self, source: str, job_id: str, ttl_seconds: float) -> str:
        key = PREFIX + source + ":lock"

        async def take(r: aioredis.Redis) -> str:
            if await r.set(key, job_id, nx=True, px=int(ttl_seconds * 1000)):
                return ""
            holder = await r.get(key)
            return as_bytes(holder).decode() if holder is not None else ""

        return await self.guard.call_or_raise("source-lock", take)

    async def release(self, source: str, job_id: str) -> None:
        key = PREFIX + source + ":lock"
        await self.guard.call_or_raise("source-unlock", lambda r: r.eval(_RELEASE, 1, key, job_id))

    async def holder(self, source: str) -> str:
        raw = await self.guard.call_or_raise("source-lock-get", lambda r: r.get(PREFIX + source + ":lock"))
        return "" if raw is None else as_bytes(raw).decode()

    async def tokens(self, source: str) -> dict[str, str]:
        raw = await self.guard.call_or_raise("source-tokens", lambda r: r.hgetall(PREFIX + source + ":tokens"))
        return {as_bytes(k).decode(): as_bytes(v).decode() for k, v in raw.items()}

    async def save_tokens(self, source: str, tokens: dict[str, str]) -> None:
        key = PREFIX + source + ":tokens"

        async def write(r: aioredis.Redis) -> None:
            pipe = r.pipeline(transaction=True)
            pipe.delete(key)
            if tokens:
                pipe.hset(key, mapping=cast(Any, tokens))
            await pipe.execute()

        await self.guard.call_or_raise("source-tokens-save", write)

    async def status(self, source: str) -> SyncStatus | None:
        raw = await self.guard.call_or_raise("source-status", lambda r: r.get(PREFIX + source + ":status"))
        return None if raw is None else from_json(as_bytes(raw), SyncStatus, FORMAT)

    async def save_status(self, status: SyncStatus) -> None:
        key, value = PREFIX + status.source + ":status", to_json(status, FORMAT)
        await self.guard.call_or_raise("source-status-save", lambda r: r.set(key, value))
