"""In-memory fakes of the core's stores and task queue (the Protocols of
``services.orchestrator.core.stores``), for unit tests of jobs and batches without Redis."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from services.common.errors import Unavailable
from services.orchestrator.core.jobs.ports import TaskKind
from services.orchestrator.core.jobs.records import (
    BatchRecord,
    BatchResult,
    JobRecord,
    decode_batch,
    decode_job,
    decode_result,
    encode,
)


@dataclass
class MemoryJobStore:
    """Records kept encoded, as a real store keeps them (so the codec is exercised too)."""

    jobs: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, bytes] = field(default_factory=dict)
    payloads: dict[str, bytes] = field(default_factory=dict)
    results_by_batch: dict[str, dict[int, bytes]] = field(default_factory=dict)
    #: Set to make every call fail as a Redis outage would.
    down: bool = False

    def _up(self) -> None:
        if self.down:
            raise Unavailable("redis is down")

    async def create_job(self, job: JobRecord, payload: bytes) -> None:
        self._up()
        self.jobs[job.job_id], self.payloads["job:" + job.job_id] = encode(job), payload

    async def job(self, job_id: str) -> JobRecord | None:
        self._up()
        raw = self.jobs.get(job_id)
        return None if raw is None else decode_job(raw)

    async def save_job(self, job: JobRecord) -> None:
        self._up()
        self.jobs[job.job_id] = encode(job)

    async def job_payload(self, job_id: str) -> bytes | None:
        self._up()
        return self.payloads.get("job:" + job_id)

    async def drop_job_payload(self, job_id: str) -> None:
        self._up()
        self.payloads.pop("job:" + job_id, None)

    async def create_batch(self, batch: BatchRecord, payload: bytes) -> None:
        self._up()
        self.batches[batch.batch_id], self.payloads["batch:" + batch.batch_id] = encode(batch), payload

    async def batch(self, batch_id: str) -> BatchRecord | None:
        self._up()
        raw = self.batches.get(batch_id)
        if raw is None:
            return None
        batch = decode_batch(raw)
        batch.done = len(self.results_by_batch.get(batch_id, {}))
        return batch

    async def save_batch(self, batch: BatchRecord) -> None:
        self._up()
        self.batches[batch.batch_id] = encode(copy.copy(batch))

    async def batch_payload(self, batch_id: str) -> bytes | None:
        self._up()
        return self.payloads.get("batch:" + batch_id)

    async def add_result(self, batch_id: str, result: BatchResult) -> None:
        self._up()
        self.results_by_batch.setdefault(batch_id, {})[result.index] = encode(result)

    async def results(self, batch_id: str) -> list[BatchResult]:
        self._up()
        stored = self.results_by_batch.get(batch_id, {})
        return [decode_result(stored[index]) for index in sorted(stored)]

    async def ping(self) -> bool:
        return not self.down

    async def close(self) -> None:
        pass


@dataclass
class MemoryTaskQueue:
    """Records what was sent; ``configured=False`` plays a mesh without a broker."""

    configured: bool = True
    sent: list[tuple[TaskKind, str]] = field(default_factory=list)
    down: bool = False

    async def send(self, kind: TaskKind, record_id: str) -> None:
        if self.down:
            raise Unavailable("the broker did not take the task")
        self.sent.append((kind, record_id))

    async def close(self) -> None:
        pass
