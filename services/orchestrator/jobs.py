"""Background ingestion jobs: submit returns an id at once; workers in every replica take
queued jobs, run them through the Ingestor, and record progress after every stored group.

A job resumes where it stopped: documents are processed in submission order and the
store keeps how many were handled, so a job taken over from a dead replica skips what
was already indexed (re-indexing a document is harmless anyway: chunk ids are stable).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator

from ragmesh.v1 import orchestrator_pb2
from services.common.errors import InvalidArgument, NotFound, Unavailable
from services.orchestrator.config import IngestSettings
from services.orchestrator.deadline import Deadline
from services.orchestrator.documents import document_problem
from services.orchestrator.ingest import IngestBatch, Ingestor, IngestState
from services.orchestrator.job_store import JobStore, StoredJob, now
from services.orchestrator.requests import check_collection, check_job_id
from services.orchestrator.translate import chunking_from_proto, document_from_proto, progress_to_proto

log = logging.getLogger(__name__)
TERMINAL = (orchestrator_pb2.JOB_STATE_SUCCEEDED, orchestrator_pb2.JOB_STATE_FAILED)
WATCH_POLL_SECONDS = 0.3


class JobManager:
    """Submits, runs, reaps and reports ingestion jobs."""

    def __init__(self, store: JobStore, ingestor: Ingestor, settings: IngestSettings) -> None:
        self.store = store
        self.ingestor = ingestor
        self.settings = settings
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._tasks: list[asyncio.Task[None]] = []
        self._running: set[str] = set()

    async def submit(self, request: orchestrator_pb2.SubmitIngestJobRequest) -> str:
        """Store a job and queue it; returns its id."""
        check_collection(request.collection)
        if not request.documents:
            raise InvalidArgument("documents is empty; a job needs at least one document")
        if len(request.documents) > self.settings.max_documents:
            raise InvalidArgument(f"{len(request.documents)} documents; the limit is {self.settings.max_documents}")
        job = orchestrator_pb2.IngestJob(
            job_id=uuid.uuid4().hex,
            collection=request.collection,
            state=orchestrator_pb2.JOB_STATE_PENDING,
            progress=orchestrator_pb2.IngestProgress(documents_total=len(request.documents)),
            created_at=now(),
            updated_at=now(),
        )
        await self.store.create(StoredJob(job), request.SerializeToString())
        return job.job_id

    async def get(self, job_id: str) -> orchestrator_pb2.IngestJob:
        """The job's current state; NotFound for an unknown id."""
        stored = await self.store.get(check_job_id(job_id))
        if stored is None:
            raise NotFound(f"no ingestion job with id {job_id!r}")
        return stored.job

    async def watch(self, job_id: str) -> AsyncIterator[orchestrator_pb2.IngestJob]:
        """The job's state whenever it changes, until it finishes."""
        last: bytes | None = None
        while True:
            job = await self.get(job_id)
            encoded = job.SerializeToString()
            if encoded != last:
                last = encoded
                yield job
            if job.state in TERMINAL:
                return
            await asyncio.sleep(WATCH_POLL_SECONDS)

    def start(self) -> None:
        """Start the workers and the reaper of abandoned jobs."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._work()) for _ in range(self.settings.job_workers)]
        if self.settings.job_workers:
            self._tasks.append(loop.create_task(self._reap()))

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop working; jobs still running go back to the queue for another replica.

        Bounded: a worker that does not end within ``grace_seconds`` of its cancellation is
        logged and left behind, so a shutdown never hangs.
        """
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=grace_seconds)
            if stuck:
                log.error("%d ingestion worker(s) did not stop within %.1fs", len(stuck), grace_seconds)
        for job_id in list(self._running):
            await self._requeue(job_id, "its replica shut down", count_attempt=False)
            self._running.discard(job_id)

    async def _work(self) -> None:
        while True:
            try:
                job_id = await self.store.claim_next(self.owner, self.settings.job_lease_seconds)
                if job_id:
                    await self._run(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ingestion worker error")
                await asyncio.sleep(1.0)

    async def _run(self, job_id: str) -> None:
        stored = await self.store.get(job_id)
        payload = await self.store.payload(job_id)
        if stored is None or payload is None or stored.job.state in TERMINAL:
            await self.store.release(job_id)
            return
        self._running.add(job_id)
        stored.job.state = orchestrator_pb2.JOB_STATE_RUNNING
        stored.job.runner = self.owner
        stored.job.attempts += 1
        await self._save(stored)
        ingesting = asyncio.ensure_future(
            self._ingest(stored, orchestrator_pb2.SubmitIngestJobRequest.FromString(payload))
        )
        heartbeat = asyncio.ensure_future(self._heartbeat(job_id, ingesting))
        try:
            await ingesting
            stored.job.state = orchestrator_pb2.JOB_STATE_SUCCEEDED
            stored.job.error = ""
        except asyncio.CancelledError:
            ingesting.cancel()
            if heartbeat.done() and not _being_cancelled():
                # Only the ingestion was cancelled, by the heartbeat: the lease was lost and
                # another replica runs the job now. If this task is being cancelled too
                # (``stop`` raced the lost lease), the cancellation must propagate, or the
                # worker loop would go on and ``stop`` would wait for it forever.
                self._running.discard(job_id)
                return
            raise  # still ours: ``stop`` hands it back to the queue
        except Exception as error:  # noqa: BLE001 - recorded on the job for its submitter
            log.warning("ingestion job %s failed: %s", job_id, error)
            stored.job.state = orchestrator_pb2.JOB_STATE_FAILED
            stored.job.error = f"{type(error).__name__}: {getattr(error, 'message', None) or error}"
        finally:
            heartbeat.cancel()
        stored.job.progress.done = True
        await self._save(stored)
        self._running.discard(job_id)
        await self.store.release(job_id)

    async def _ingest(self, stored: StoredJob, request: orchestrator_pb2.SubmitIngestJobRequest) -> None:
        """Index the documents not yet handled, saving progress after every group."""
        progress = stored.job.progress
        state = IngestState(
            documents_total=stored.cursor,
            documents_done=progress.documents_done,
            documents_failed=progress.documents_failed,
            chunks_total=progress.chunks_total,
            chunks_done=progress.chunks_done,
        )
        documents = [document_from_proto(d) for d in request.documents]
        for document in documents[: stored.cursor]:  # rebuild duplicate detection
            if document_problem(document, state.seen, self.settings.max_document_chars) is None:
                state.seen.add(document.id)

        async def batches() -> AsyncIterator[IngestBatch]:
            yield IngestBatch(request.collection, documents[stored.cursor :], chunking_from_proto(request.chunking))

        async for domain_update in self.ingestor.run(batches(), Deadline(None), state):
            update = progress_to_proto(domain_update)
            errors = list(progress.errors) + list(update.errors)
            progress.CopyFrom(update)
            progress.ClearField("errors")
            progress.errors.extend(errors)
            progress.done = False
            stored.cursor = update.documents_done + update.documents_failed
            await self._save(stored)

    async def _heartbeat(self, job_id: str, ingesting: asyncio.Future[None]) -> None:
        """Renew the lease; if another replica took the job over, stop running it here."""
        while True:
            await asyncio.sleep(self.settings.job_lease_seconds / 3)
            if not await self.store.renew(job_id, self.owner, self.settings.job_lease_seconds):
                log.warning("lost the lease of job %s; stopping it here", job_id)
                ingesting.cancel()
                return

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(self.settings.job_lease_seconds / 2)
            await self.reap_once()

    async def reap_once(self) -> None:
        """Requeue (or fail) jobs whose replica stopped renewing their lease."""
        try:
            for job_id in await self.store.orphans(self.settings.job_lease_seconds):
                await self._requeue(job_id, "the replica running it stopped", count_attempt=True)
        except Unavailable as error:  # Redis trouble: the next round tries again
            log.warning("could not reap abandoned jobs: %s", error.message)

    async def _requeue(self, job_id: str, reason: str, count_attempt: bool) -> None:
        stored = await self.store.get(job_id)
        if stored is None or stored.job.state in TERMINAL:
            return
        if count_attempt and stored.job.attempts >= self.settings.job_max_attempts:
            stored.job.state = orchestrator_pb2.JOB_STATE_FAILED
            stored.job.error = f"{reason}; gave up after {stored.job.attempts} attempts"
            stored.job.progress.done = True
            await self._save(stored)
            await self.store.release(job_id)
            return
        if not count_attempt:
            stored.job.attempts -= 1  # a clean hand-over is not a failed attempt
        stored.job.state = orchestrator_pb2.JOB_STATE_PENDING
        stored.job.error = f"resuming: {reason}"
        await self._save(stored)
        await self.store.requeue(job_id)
        log.info("requeued ingestion job %s (%s)", job_id, reason)

    async def _save(self, stored: StoredJob) -> None:
        stored.job.updated_at = now()
        await self.store.save(stored)


def _being_cancelled() -> bool:
    """Whether the running task itself has a cancellation pending (not just something it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
