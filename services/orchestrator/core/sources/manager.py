"""Sources as the facade and the worker see them: the declared sources, their last sync, a
sync submitted as a job (the existing job records and task queue), and the running of one —
one at a time per source (a lock every worker shares), measured and recorded.

A scheduled sync (Celery beat) runs the same way; its job belongs to no tenant.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from ragmesh.vocabulary import JobState
from services.common.errors import FailedPrecondition, NotFound
from services.orchestrator.core.codec import from_json, to_json
from services.orchestrator.core.domain import IngestProgress
from services.orchestrator.core.jobs.manager import NO_ENGINE, owned_id
from services.orchestrator.core.jobs.ports import JobStore, TaskKind, TaskQueue
from services.orchestrator.core.jobs.records import JobRecord, now
from services.orchestrator.core.jobs.runner import describe
from services.orchestrator.core.sources.model import SourceReader, SourceSpec, SyncStatus
from services.orchestrator.core.sources.sync import SourceSyncer, SyncFailed, SyncResult

LAST_SUCCESS = Gauge(
    "ragmesh_source_last_success_timestamp_seconds", "Unix time the source's last successful sync ended", ["source"]
)
SYNC_DOCUMENTS = Counter(
    "ragmesh_source_documents_total", "Documents handled by syncs, by outcome", ["source", "outcome"]
)
SYNC_SECONDS = Histogram(
    "ragmesh_source_sync_seconds",
    "Duration of syncs",
    ["source"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
SYNCS = Counter("ragmesh_source_syncs_total", "Syncs by final state", ["source", "state"])
ReaderFactory = Callable[[SourceSpec], SourceReader]


@dataclass(frozen=True)
class SyncRequest:
    """A sync job's payload: which source."""

    source: str


class SourceManager:
    """The declared sources, their status, and their syncs as jobs."""

    def __init__(
        self,
        specs: dict[str, SourceSpec],
        readers: ReaderFactory,
        syncer: SourceSyncer | None,
        engine: tuple[JobStore | None, TaskQueue | None],
        lock_seconds: float,
    ) -> None:
        self.specs, self.readers, self.syncer = specs, readers, syncer
        self.store, self.queue = engine
        self.lock_seconds = lock_seconds

    def spec(self, name: str) -> SourceSpec:
        """The source called ``name``; NotFound naming the known ones otherwise."""
        spec = self.specs.get(name)
        if spec is None:
            known = ", ".join(sorted(self.specs)) or "none (RAGMESH_ORCHESTRATOR_SOURCES_FILE is unset)"
            raise NotFound(f"no source {name[:80]!r}; the sources are: {known}")
        return spec

    def _engine(self) -> tuple[JobStore, TaskQueue, SourceSyncer]:
        if self.store is None or self.queue is None or self.syncer is None or not self.queue.configured:
            raise FailedPrecondition(NO_ENGINE)
        return self.store, self.queue, self.syncer

    async def status(self, name: str) -> SyncStatus:
        """The source's last sync (PENDING and empty before the first)."""
        self.spec(name)
        if self.syncer is None:
            return SyncStatus(name)
        return await self.syncer.states.status(name) or SyncStatus(name)

    async def submit(self, name: str, owner: str) -> str:
        """A sync of ``name`` as a job (id prefixed by ``owner``); FailedPrecondition while one runs."""
        spec = self.spec(name)
        store, queue, syncer = self._engine()
        running = await syncer.states.holder(name)
        if running:
            raise FailedPrecondition(f"a sync of source {name!r} is running (job {running}); watch it or wait")
        job = JobRecord(owned_id(owner), spec.collection)
        await store.create_job(job, to_json(SyncRequest(name), 1))
        await queue.send(TaskKind.SOURCE_SYNC, job.job_id)
        return job.job_id

    async def run_scheduled(self, name: str, runner: str) -> JobState | None:
        """A sync the schedule asked for: its job record made here, then run."""
        spec = self.spec(name)
        store, _, _ = self._engine()
        job = JobRecord(owned_id(""), spec.collection)
        await store.create_job(job, to_json(SyncRequest(name), 1))
        return await self.run_job(job.job_id, runner)

    async def run_job(self, job_id: str, runner: str) -> JobState | None:
        """Run a sync job (the worker's task body); its final state (None: nothing to do)."""
        store, _, syncer = self._engine()
        job, payload = await store.job(job_id), await store.job_payload(job_id)
        if job is None or payload is None or job.state.terminal:
            return None
        spec = self.spec(from_json(payload, SyncRequest, 1).source)
        holder = await syncer.states.claim(spec.name, job_id, self.lock_seconds)
        # Another job's lock: that sync owns the source's status, only this job fails. (Its own
        # lock is a redelivery after its worker died: it goes on.)
        if holder and holder != job_id:
            job.state, job.error = JobState.FAILED, f"a sync of this source is running (job {holder})"
            await store.save_job(job)
            await store.drop_job_payload(job_id)
            return JobState.FAILED
        try:
            return await self._run(job, spec, syncer, runner)
        finally:
            await asyncio.shield(syncer.states.release(spec.name, job_id))

    async def _run(self, job: JobRecord, spec: SourceSpec, syncer: SourceSyncer, runner: str) -> JobState:
        assert self.store is not None
        status = SyncStatus(spec.name, job.job_id, JobState.RUNNING, started_at=now())
        last = await syncer.states.status(spec.name)
        status = SyncStatus(**{**status.__dict__, "last_success_at": last.last_success_at if last else 0.0})
        job.state, job.runner, job.attempts = JobState.RUNNING, runner, job.attempts + 1
        await self.store.save_job(job)
        await syncer.states.save_status(status)
        started = time.monotonic()
        try:
            result = await syncer.run(spec, self.readers(spec), _saver(job, self.store))
        except asyncio.CancelledError:
            await asyncio.shield(self._finish(job, status, "cancelled: the worker stopped before the end"))
            raise
        except SyncFailed as error:
            return await self._finish(job, status, str(error))
        except Exception as error:  # noqa: BLE001 - recorded on the job and status; the next sync starts over
            return await self._finish(job, status, describe(error))
        finally:
            SYNC_SECONDS.labels(spec.name).observe(time.monotonic() - started)
        return await self._finish(job, status, "", result)

    async def _finish(
        self, job: JobRecord, status: SyncStatus, error: str, result: SyncResult | None = None
    ) -> JobState:
        """Record the end of a sync on its job, its status and the metrics."""
        assert self.store is not None and self.syncer is not None
        state = JobState.FAILED if error else JobState.SUCCEEDED
        ended = now()
        counts: dict[str, object] = {**_counts(result), "errors": tuple(result.errors)} if result is not None else {}
        success = ended if not error else status.last_success_at
        changes = {"state": state, "error": error, "finished_at": ended, "last_success_at": success, **counts}
        final = SyncStatus(**{**status.__dict__, **changes})
        job.state, job.error = state, error
        if result is not None:
            job.progress = dataclasses.replace(
                result.progress,
                errors=tuple(result.errors),
                done=True,
                documents_failed=result.failed,
                documents_unchanged=result.unchanged,
                documents_deleted=result.deleted,
            )
        await self.store.save_job(job)
        await self.store.drop_job_payload(job.job_id)
        await self.syncer.states.save_status(final)
        SYNCS.labels(status.source, state.value).inc()
        for outcome, count in (_counts(result) if result is not None else {}).items():
            SYNC_DOCUMENTS.labels(status.source, outcome).inc(count)
        if not error:
            LAST_SUCCESS.labels(status.source).set(ended)
        return state


def _counts(result: SyncResult) -> dict[str, int]:
    return {
        "added": result.added,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "deleted": result.deleted,
        "failed": result.failed,
    }


def _saver(job: JobRecord, store: JobStore) -> Callable[[IngestProgress], Awaitable[None]]:
    """Progress callback: the job's record updated."""

    async def save(progress: IngestProgress) -> None:
        job.progress = progress
        await store.save_job(job)

    return save
