"""The records of background work in Redis (the core's :class:`JobStore` port), shared by
every orchestrator replica (which writes a record and reads it for GET / watch) and every
worker (which updates it). Records are the core's versioned JSON.

Only records live here. Queueing, delivery, acknowledgement and redelivery are the task
engine's (Celery on Redis, see :mod:`services.orchestrator.adapters.background`).
"""

from __future__ import annotations

import redis.asyncio as aioredis

from services.orchestrator.adapters.redis.guard import RedisGuard, as_bytes
from services.orchestrator.core.jobs.records import (
    BatchRecord,
    BatchResult,
    JobRecord,
    decode_batch,
    decode_job,
    decode_result,
    encode,
    now,
)

JOB_PREFIX = "ragmesh:job:v2:"
BATCH_PREFIX = "ragmesh:batch:v2:"
#: Records and payloads expire a week after their last write.
TTL_SECONDS = 7 * 86_400


class RedisJobStore:
    """Job and batch records in Redis; every failure raises Unavailable (via the guard)."""

    def __init__(self, guard: RedisGuard) -> None:
        self.guard = guard

    async def _create(self, use: str, key: str, record: bytes, payload: bytes) -> None:
        async def write(r: aioredis.Redis) -> None:
            pipe = r.pipeline()
            pipe.set(key, record, ex=TTL_SECONDS)
            pipe.set(key + ":payload", payload, ex=TTL_SECONDS)
            await pipe.execute()

        await self.guard.call_or_raise(use, write)

    async def _get(self, use: str, key: str) -> bytes | None:
        raw = await self.guard.call_or_raise(use, lambda r: r.get(key))
        return None if raw is None else as_bytes(raw)

    async def create_job(self, job: JobRecord, payload: bytes) -> None:
        await self._create("job-create", JOB_PREFIX + job.job_id, encode(job), payload)

    async def job(self, job_id: str) -> JobRecord | None:
        raw = await self._get("job-get", JOB_PREFIX + job_id)
        return None if raw is None else decode_job(raw)

    async def save_job(self, job: JobRecord) -> None:
        job.updated_at = now()
        key, record = JOB_PREFIX + job.job_id, encode(job)
        await self.guard.call_or_raise("job-save", lambda r: r.set(key, record, ex=TTL_SECONDS))

    async def job_payload(self, job_id: str) -> bytes | None:
        return await self._get("job-payload", JOB_PREFIX + job_id + ":payload")

    async def drop_job_payload(self, job_id: str) -> None:
        await self.guard.call_or_raise("job-release", lambda r: r.delete(JOB_PREFIX + job_id + ":payload"))

    async def create_batch(self, batch: BatchRecord, payload: bytes) -> None:
        await self._create("batch-create", BATCH_PREFIX + batch.batch_id, encode(batch), payload)

    async def batch(self, batch_id: str) -> BatchRecord | None:
        key = BATCH_PREFIX + batch_id

        async def read(r: aioredis.Redis) -> tuple[bytes | None, int]:
            pipe = r.pipeline()
            pipe.get(key)
            pipe.hlen(key + ":results")
            raw, count = await pipe.execute()
            return raw, int(count)

        raw, count = await self.guard.call_or_raise("batch-get", read)
        if raw is None:
            return None
        batch = decode_batch(as_bytes(raw))
        batch.done = count
        return batch

    async def save_batch(self, batch: BatchRecord) -> None:
        batch.updated_at = now()
        key, record = BATCH_PREFIX + batch.batch_id, encode(batch)
        await self.guard.call_or_raise("batch-save", lambda r: r.set(key, record, ex=TTL_SECONDS))

    async def batch_payload(self, batch_id: str) -> bytes | None:
        return await self._get("batch-payload", BATCH_PREFIX + batch_id + ":payload")

    async def add_result(self, batch_id: str, result: BatchResult) -> None:
        key, value = BATCH_PREFIX + batch_id + ":results", encode(result)

        async def write(r: aioredis.Redis) -> None:
            pipe = r.pipeline()
            pipe.hset(key, str(result.index), value)
            pipe.expire(key, TTL_SECONDS)
            await pipe.execute()

        await self.guard.call_or_raise("batch-result", write)

    async def results(self, batch_id: str) -> list[BatchResult]:
        raw = await self.guard.call_or_raise("batch-results", lambda r: r.hgetall(BATCH_PREFIX + batch_id + ":results"))
        return sorted((decode_result(as_bytes(v)) for v in raw.values()), key=lambda result: result.index)

    async def ping(self) -> bool:
        return bool(await self.guard.call_or_raise("ping", lambda r: r.ping()))

    async def close(self) -> None:
        await self.guard.close()
