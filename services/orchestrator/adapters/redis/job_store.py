"""Where the records of background work live: Redis, shared by every orchestrator replica
(which writes a record and reads it for GET / watch) and every worker (which updates it).

Only records live here. Queueing, delivery, acknowledgement and redelivery are the task
engine's (Celery on Redis, see services/worker/); a record just says how far the work got:
an ingestion job keeps a cursor (documents handled, in submission order) so that a
redelivered task resumes after the last stored group, and a batch keeps one result per
answered query so that a redelivered batch answers only the rest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from ragmesh.v1 import orchestrator_pb2
from services.orchestrator.adapters.redis.guard import RedisGuard, as_bytes

JOB_PREFIX = "ragmesh:job:"
BATCH_PREFIX = "ragmesh:batch:"
#: Records and payloads expire a week after their last write.
TTL_SECONDS = 7 * 86_400
TERMINAL = (orchestrator_pb2.JOB_STATE_SUCCEEDED, orchestrator_pb2.JOB_STATE_FAILED)


def now() -> float:
    """Unix seconds, as the records store them."""
    return time.time()


@dataclass
class StoredJob:
    """A job's public state plus how far its documents were processed."""

    job: orchestrator_pb2.IngestJob
    cursor: int = 0  # documents handled (indexed or rejected), in submission order

    def encode(self) -> bytes:
        return self.cursor.to_bytes(8, "big") + self.job.SerializeToString()

    @classmethod
    def decode(cls, raw: bytes) -> StoredJob:
        return cls(orchestrator_pb2.IngestJob.FromString(raw[8:]), int.from_bytes(raw[:8], "big"))


class RecordStore:
    """Job and batch records in Redis; every failure raises Unavailable (via the guard)."""

    def __init__(self, redis: RedisGuard) -> None:
        self.redis = redis

    async def create_job(self, stored: StoredJob, payload: bytes) -> None:
        """Store a new job's record and its documents."""
        key = JOB_PREFIX + stored.job.job_id

        async def write(r: aioredis.Redis) -> None:
            pipe = r.pipeline()
            pipe.set(key, stored.encode(), ex=TTL_SECONDS)
            pipe.set(key + ":payload", payload, ex=TTL_SECONDS)
            await pipe.execute()

        await self.redis.call_or_raise("job-create", write)

    async def job(self, job_id: str) -> StoredJob | None:
        """A job's record, or None."""
        raw = await self.redis.call_or_raise("job-get", lambda r: r.get(JOB_PREFIX + job_id))
        return None if raw is None else StoredJob.decode(as_bytes(raw))

    async def save_job(self, stored: StoredJob) -> None:
        """Write a job's record (its ``updated_at`` set to now)."""
        stored.job.updated_at = now()
        key = JOB_PREFIX + stored.job.job_id
        await self.redis.call_or_raise("job-save", lambda r: r.set(key, stored.encode(), ex=TTL_SECONDS))

    async def job_payload(self, job_id: str) -> bytes | None:
        """The documents of a job (a serialized SubmitIngestJobRequest), or None."""
        raw = await self.redis.call_or_raise("job-payload", lambda r: r.get(JOB_PREFIX + job_id + ":payload"))
        return None if raw is None else as_bytes(raw)

    async def drop_job_payload(self, job_id: str) -> None:
        """Forget a finished job's documents (they are indexed); the record stays."""
        await self.redis.call_or_raise("job-release", lambda r: r.delete(JOB_PREFIX + job_id + ":payload"))

    async def create_batch(self, batch: orchestrator_pb2.QueryBatch, payload: bytes) -> None:
        """Store a new batch's record and its queries."""
        key = BATCH_PREFIX + batch.batch_id

        async def write(r: aioredis.Redis) -> None:
            pipe = r.pipeline()
            pipe.set(key, batch.SerializeToString(), ex=TTL_SECONDS)
            pipe.set(key + ":payload", payload, ex=TTL_SECONDS)
            await pipe.execute()

        await self.redis.call_or_raise("batch-create", write)

    async def batch(self, batch_id: str) -> orchestrator_pb2.QueryBatch | None:
        """A batch's record with ``done`` counted from its stored results, or None."""
        key = BATCH_PREFIX + batch_id

        async def read(r: aioredis.Redis) -> tuple[bytes | None, int]:
            pipe = r.pipeline()
            pipe.get(key)
            pipe.hlen(key + ":results")
            raw, count = await pipe.execute()
            return raw, int(count)

        raw, count = await self.redis.call_or_raise("batch-get", read)
        if raw is None:
            return None
        batch = orchestrator_pb2.QueryBatch.FromString(as_bytes(raw))
        batch.done = count
        return batch

    async def save_batch(self, batch: orchestrator_pb2.QueryBatch) -> None:
        """Write a batch's record (without results, which live beside it)."""
        batch.updated_at = now()
        record = orchestrator_pb2.QueryBatch()
        record.CopyFrom(batch)
        record.ClearField("results")
        key = BATCH_PREFIX + batch.batch_id
        await self.redis.call_or_raise("batch-save", lambda r: r.set(key, record.SerializeToString(), ex=TTL_SECONDS))

    async def batch_payload(self, batch_id: str) -> bytes | None:
        """The queries of a batch (a serialized SubmitQueryBatchRequest), or None."""
        raw = await self.redis.call_or_raise("batch-payload", lambda r: r.get(BATCH_PREFIX + batch_id + ":payload"))
        return None if raw is None else as_bytes(raw)

    async def add_result(self, batch_id: str, result: orchestrator_pb2.QueryBatchResult) -> None:
        """Store one query's outcome (a redelivered batch skips the indexes stored)."""
        key = BATCH_PREFIX + batch_id + ":results"

        async def write(r: aioredis.Redis) -> None:
            pipe = r.pipeline()
            pipe.hset(key, str(result.index), result.SerializeToString())
            pipe.expire(key, TTL_SECONDS)
            await pipe.execute()

        await self.redis.call_or_raise("batch-result", write)

    async def results(self, batch_id: str) -> list[orchestrator_pb2.QueryBatchResult]:
        """Every stored result of a batch, by index."""
        raw = await self.redis.call_or_raise("batch-results", lambda r: r.hgetall(BATCH_PREFIX + batch_id + ":results"))
        results = [orchestrator_pb2.QueryBatchResult.FromString(as_bytes(v)) for v in raw.values()]
        return sorted(results, key=lambda result: result.index)
