"""Where ingestion jobs live: in this process, or in Redis so that every orchestrator
replica sees every job and a job outlives the replica that ran it.

A running job holds a lease that its runner renews; a job whose lease lapsed (its replica
died) is put back in the queue by any replica's reaper — or failed, with the reason, after
too many attempts — so no job is left RUNNING forever.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis

from ragmesh.v1 import orchestrator_pb2
from services.orchestrator.redis_store import RedisGuard, as_bytes

_PREFIX = "ragmesh:job:"
_QUEUE = "ragmesh:jobs:queue"
_RUNNING = "ragmesh:jobs:running"
_PAYLOAD_TTL_SECONDS = 7 * 86_400
# KEYS: queue, running set; ARGV: owner, lease ms, key prefix. A job whose lease someone
# still holds is left to that holder (and to the reaper, should it die).
_CLAIM_NEXT = """
local job = redis.call('LPOP', KEYS[1])
if not job then return false end
if redis.call('SET', ARGV[3] .. job .. ':lease', ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('SADD', KEYS[2], job)
  return job
end
return false
"""


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


class JobStore(Protocol):
    """Storage, queueing and leases of ingestion jobs."""

    async def create(self, stored: StoredJob, payload: bytes) -> None: ...
    async def get(self, job_id: str) -> StoredJob | None: ...
    async def save(self, stored: StoredJob) -> None: ...
    async def payload(self, job_id: str) -> bytes | None: ...
    async def claim_next(self, owner: str, lease: float) -> str | None: ...
    async def requeue(self, job_id: str) -> None: ...
    async def renew(self, job_id: str, owner: str, lease: float) -> bool: ...
    async def release(self, job_id: str) -> None: ...
    async def orphans(self, lease: float) -> list[str]: ...


class MemoryJobStore:
    """Jobs in this process only (no Redis): they end with the process."""

    def __init__(self) -> None:
        self.jobs: dict[str, StoredJob] = {}
        self.payloads: dict[str, bytes] = {}
        self.queue: asyncio.Queue[str] = asyncio.Queue()

    async def create(self, stored: StoredJob, payload: bytes) -> None:
        self.jobs[stored.job.job_id] = stored
        self.payloads[stored.job.job_id] = payload
        await self.requeue(stored.job.job_id)

    async def get(self, job_id: str) -> StoredJob | None:
        stored = self.jobs.get(job_id)
        return None if stored is None else StoredJob.decode(stored.encode())  # a copy, like Redis

    async def save(self, stored: StoredJob) -> None:
        self.jobs[stored.job.job_id] = StoredJob.decode(stored.encode())

    async def payload(self, job_id: str) -> bytes | None:
        return self.payloads.get(job_id)

    async def claim_next(self, owner: str, lease: float) -> str | None:
        job_id = await self.queue.get()
        return job_id if job_id in self.jobs else None

    async def requeue(self, job_id: str) -> None:
        self.queue.put_nowait(job_id)

    async def renew(self, job_id: str, owner: str, lease: float) -> bool:
        return True

    async def release(self, job_id: str) -> None:
        if self.jobs[job_id].job.state in _TERMINAL:
            self.payloads.pop(job_id, None)  # the documents are indexed; keep only the record

    async def orphans(self, lease: float) -> list[str]:
        return []


_TERMINAL = (orchestrator_pb2.JOB_STATE_SUCCEEDED, orchestrator_pb2.JOB_STATE_FAILED)


class RedisJobStore:
    """Jobs in Redis, shared by all replicas; errors raise Unavailable (via the guard)."""

    def __init__(self, redis: RedisGuard, poll_seconds: float = 0.25) -> None:
        self.redis = redis
        self.poll_seconds = poll_seconds

    async def create(self, stored: StoredJob, payload: bytes) -> None:
        job_id = stored.job.job_id

        async def write(r: aioredis.Redis) -> None:
            pipe = r.pipeline()
            pipe.set(_PREFIX + job_id, stored.encode(), ex=_PAYLOAD_TTL_SECONDS)
            pipe.set(_PREFIX + job_id + ":payload", payload, ex=_PAYLOAD_TTL_SECONDS)
            pipe.rpush(_QUEUE, job_id)
            await pipe.execute()

        await self.redis.call_or_raise("job-create", write)

    async def get(self, job_id: str) -> StoredJob | None:
        raw = await self.redis.call_or_raise("job-get", lambda r: r.get(_PREFIX + job_id))
        return None if raw is None else StoredJob.decode(as_bytes(raw))

    async def save(self, stored: StoredJob) -> None:
        key = _PREFIX + stored.job.job_id
        await self.redis.call_or_raise("job-save", lambda r: r.set(key, stored.encode(), ex=_PAYLOAD_TTL_SECONDS))

    async def payload(self, job_id: str) -> bytes | None:
        key = _PREFIX + job_id + ":payload"
        raw = await self.redis.call_or_raise("job-payload", lambda r: r.get(key))
        return None if raw is None else as_bytes(raw)

    async def claim_next(self, owner: str, lease: float) -> str | None:
        """Pop the next job and take its lease in one step (a Lua script): a replica that
        fails half-way can then never leave a job neither queued nor running."""
        raw = await self.redis.call(
            "job-claim",
            lambda r: r.eval(_CLAIM_NEXT, 2, _QUEUE, _RUNNING, owner, int(lease * 1000), _PREFIX),
            None,
        )
        if raw is None:
            await asyncio.sleep(self.poll_seconds)
            return None
        return as_bytes(raw).decode()

    async def requeue(self, job_id: str) -> None:
        """Back in the queue and out of the running set in one transaction, so no replica
        can claim it in between and then lose its fresh lease to this release."""

        async def move(r: aioredis.Redis) -> None:
            pipe = r.pipeline(transaction=True)
            pipe.srem(_RUNNING, job_id)
            pipe.delete(_PREFIX + job_id + ":lease", _PREFIX + job_id + ":reap")  # reapable again
            pipe.rpush(_QUEUE, job_id)
            await pipe.execute()

        await self.redis.call_or_raise("job-requeue", move)

    async def renew(self, job_id: str, owner: str, lease: float) -> bool:
        async def extend(r: aioredis.Redis) -> bool:
            holder = await r.get(_PREFIX + job_id + ":lease")
            if holder is None or as_bytes(holder).decode() != owner:
                return False
            return bool(await r.pexpire(_PREFIX + job_id + ":lease", int(lease * 1000)))

        return await self.redis.call("job-renew", extend, True)  # a Redis blip does not stop the job

    async def release(self, job_id: str) -> None:
        async def drop(r: aioredis.Redis) -> None:
            await r.srem(_RUNNING, job_id)
            await r.delete(_PREFIX + job_id + ":lease")

        await self.redis.call("job-release", drop, None)

    async def orphans(self, lease: float) -> list[str]:
        """Running jobs whose lease lapsed. A reap lock hands each to one replica at a time;
        the job leaves the running set only when requeued (``release``), so a reaper that
        fails half-way leaves it for the next one instead of losing it."""

        async def find(r: aioredis.Redis) -> list[str]:
            lapsed = []
            for raw in await r.smembers(_RUNNING):
                job_id = as_bytes(raw).decode()
                if await r.exists(_PREFIX + job_id + ":lease"):
                    continue
                if await r.set(_PREFIX + job_id + ":reap", "1", nx=True, px=int(lease * 1000)):
                    lapsed.append(job_id)
            return lapsed

        return await self.redis.call("job-reap", find, [])


def now() -> float:
    """Unix seconds, for job timestamps."""
    return time.time()
