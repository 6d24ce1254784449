"""The worker's asyncio side: one event loop in a thread of its own that owns the core (built
by the orchestrator's composition root, :func:`services.orchestrator.wiring.build_core`, as
the orchestrator builds it) and the health server.

Celery's solo pool runs each task in the worker's main thread; the task hands its
coroutine to this loop and waits, bounded by the task's time limit. Keeping one loop for
the process's life keeps the channels (and their connections) across tasks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry.context import Context

from services.common.errors import DeadlineExceeded
from services.common.server import RunningServer, ServiceDefinition, StartupError
from services.orchestrator.core.facade import Orchestrator
from services.orchestrator.core.jobs.runner import JobRunner
from services.orchestrator.core.sources.manager import SourceManager
from services.orchestrator.wiring import WiringError, open_core
from services.worker.config import WorkerConfig

log = logging.getLogger(__name__)
T = TypeVar("T")
#: After a cancel (time limit, shutdown), how long the task gets to record where it stopped.
CANCEL_WAIT_SECONDS = 10.0


class HandedBack(Exception):
    """The running task was stopped by a shutdown and must go back to the queue."""


class WorkerRuntime:
    """The background loop, the parts on it, and the health server."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="ragmesh-worker-loop", daemon=True)
        self.core: Orchestrator | None = None
        self.health: RunningServer | None = None
        self.broker_ready = threading.Event()
        self._current: concurrent.futures.Future[Any] | None = None
        self._serving: asyncio.Future[None] = self.loop.create_future()

    def start(self) -> None:
        """Start the loop, build the parts and listen for health checks (NOT_SERVING)."""
        self._thread.start()
        self.call(self._open(), timeout=60.0)

    async def _open(self) -> None:
        try:
            self.core = await open_core(self.config.core)
        except WiringError as error:
            raise StartupError(str(error)) from None
        self.core.start()
        definition = ServiceDefinition("worker", [], lambda server: None, self._until_ready)
        self.health = RunningServer(definition, self.config.server)
        self._serving = asyncio.ensure_future(self._serve_health(self.health))
        async with asyncio.timeout(30):  # listening (NOT_SERVING) before the worker consumes
            while self.health.port == 0 and not self._serving.done():  # noqa: ASYNC110 - no event for 'bound'
                await asyncio.sleep(0.01)
        if self._serving.done():
            self._serving.result()  # raises the start-up failure (port taken)

    async def _serve_health(self, health: RunningServer) -> None:
        await health.start()  # SERVING once ready (see _until_ready)
        await self.watch_readiness(was=True)

    async def _until_ready(self) -> None:
        while not await self.ready():  # noqa: ASYNC110 - readiness is polled: Redis and health checks
            await asyncio.sleep(self.config.health_interval_seconds)

    def jobs(self) -> JobRunner:
        """What runs the tasks' bodies (the core's job runner)."""
        assert self.core is not None, "the runtime is not started"
        return self.core.job_runner()

    def sources(self) -> SourceManager:
        """What runs source syncs (the core's sources)."""
        assert self.core is not None, "the runtime is not started"
        return self.core.source_manager()

    def call(
        self, coroutine: Coroutine[Any, Any, T], timeout: float, context: Context | None = None, task: bool = False
    ) -> T:
        """Run ``coroutine`` on the loop (in trace ``context``) and wait at most ``timeout`` s.

        On time-out the coroutine is cancelled and DeadlineExceeded raised; after
        :meth:`hand_back`, HandedBack. Either way the coroutine first gets a bounded moment
        to record where it stopped. Only a ``task`` call is handed back.
        """
        finished = threading.Event()

        async def tracked() -> T:
            token = otel_context.attach(context) if context is not None else None
            try:
                return await coroutine
            finally:
                if token is not None:
                    otel_context.detach(token)
                finished.set()

        future = asyncio.run_coroutine_threadsafe(tracked(), self.loop)
        if task:
            self._current = future
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            finished.wait(CANCEL_WAIT_SECONDS)
            raise DeadlineExceeded(f"the task ran longer than its {timeout:.0f}s limit") from None
        except concurrent.futures.CancelledError:
            finished.wait(CANCEL_WAIT_SECONDS)
            raise HandedBack("the worker is shutting down; the task goes back to the queue") from None
        except BaseException:
            future.cancel()
            finished.wait(CANCEL_WAIT_SECONDS)
            raise
        finally:
            if task:
                self._current = None

    def hand_back(self) -> None:
        """Cancel the running task (from any thread): it records its progress and is requeued."""
        current = self._current
        if current is not None:
            log.warning("grace period over: handing the running task back to the queue")
            current.cancel()

    async def ready(self) -> bool:
        """Whether the broker answers and the embedder and retriever are SERVING."""
        assert self.core is not None
        try:
            pong = await self.core.job_runner().store.ping()
        except Exception:  # noqa: BLE001 - any failure means not ready
            return False
        needed = [h for h in await self.core.health() if h.component in ("embedder", "retriever")]
        return pong and self.broker_ready.is_set() and all(h.status == "SERVING" for h in needed)

    async def watch_readiness(self, was: bool) -> None:
        """Keep health in step with readiness until cancelled."""
        assert self.health is not None
        while True:
            await asyncio.sleep(self.config.health_interval_seconds)
            now_ready = await self.ready()
            if now_ready != was:
                log.info("worker %s", "SERVING" if now_ready else "NOT_SERVING (broker or components missing)")
                await self.health.health.set_serving(now_ready)
                was = now_ready

    def stop(self) -> None:
        """Stop health, close channels and Redis, stop the loop."""
        if self.core is not None:
            self.call(self._close(), timeout=self.config.server.grace_seconds + 5.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5.0)

    async def _close(self) -> None:
        assert self.core is not None
        self._serving.cancel()
        steps: list[tuple[str, Coroutine[Any, Any, Any]]] = [
            ("readiness", asyncio.gather(self._serving, return_exceptions=True)),  # type: ignore[list-item]
        ]
        if self.health is not None:
            steps.append(("health server", self.health.stop(grace=1.0)))
        steps.append(("core", self.core.close()))
        for name, step in steps:
            started = time.monotonic()
            try:
                async with asyncio.timeout(5.0):
                    await step
            except TimeoutError:
                log.warning("closing the %s took more than 5 s; going on", name)
            log.debug("closed the %s in %.2fs", name, time.monotonic() - started)
