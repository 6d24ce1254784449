"""Parsing off the event loop, in worker processes with a wall-time and a memory limit.

A parser can hang or explode on hostile input, so every document is parsed in a child
process (one document at a time per child, ``workers`` children). A child that passes
the time limit is killed; one that passes the memory limit (``RLIMIT_AS``) fails its
allocation and exits; either way the document is rejected naming the limit, a fresh
child takes the dead one's place, and the other documents are unaffected. The event loop
only awaits: pipe I/O runs on the pool's own threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.process import BaseProcess
from typing import Any

from services.common.errors import Unavailable
from services.parsing.model import DocumentRejected, ParsedDocument, ParseLimits
from services.parsing.parse import parse as parse_in_process
from services.parsing.pool_worker import ParseFunction, Reply, serve

log = logging.getLogger(__name__)

_CONTEXT = multiprocessing.get_context("forkserver")
START_ATTEMPTS = 3


class _Worker:
    """One child process and the parent's end of its pipe."""

    def __init__(self, function: ParseFunction, memory_mb: int) -> None:
        self.connection, child = _CONTEXT.Pipe(duplex=True)
        self.process: BaseProcess = _CONTEXT.Process(
            target=serve, args=(child, function, memory_mb), daemon=True, name="ragmesh-parser"
        )
        self.process.start()
        child.close()
        self.jobs = 0

    def wait_ready(self, timeout: float) -> None:
        """Block until the child reports ready (runs on a pool thread)."""
        if not self.connection.poll(timeout):
            raise TimeoutError(f"parser process did not start within {timeout:g} s")
        self.connection.recv()

    def exchange(self, request: tuple[bytes, str | None, str | None, ParseLimits]) -> Reply:
        """Send one request and wait for its reply (runs on a pool thread)."""
        try:
            self.connection.send(request)
            reply: Reply = self.connection.recv()
        except (EOFError, OSError):
            self.process.join(2.0)  # the child died: reap it, so its exit code is known
            raise
        return reply

    def death(self) -> str:
        """How the child ended, for the rejection reason."""
        code = self.process.exitcode
        if code is None:
            return "it closed its pipe"
        if code < 0:
            name = signal.Signals(-code).name
            hint = ", perhaps by the kernel for memory" if -code == signal.SIGKILL else ""
            return f"killed by {name}{hint}"
        return f"exit code {code}"

    def stop(self, grace: float) -> None:
        """Ask the child to exit, kill it after ``grace`` seconds (runs on a pool thread)."""
        with contextlib.suppress(OSError, ValueError):
            self.connection.send(None)
        self.process.join(grace)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the child, reap it and close the pipe (blocks briefly: run it on a pool thread)."""
        self.signal_kill()
        self.process.join(5.0)
        self.connection.close()

    def signal_kill(self) -> None:
        """Send SIGKILL without waiting (safe on the event loop)."""
        if self.process.is_alive():
            self.process.kill()


class ParserPool:
    """``workers`` parser processes; ``await parse(...)`` from the event loop, ``await close()`` at the end.

    ``function`` is what the children run (picklable by reference: a module-level
    function); it defaults to :func:`services.parsing.parse`. The memory limit is the
    pool's (``limits.memory_mb``, applied when a child starts); the time limit is per call.
    """

    def __init__(
        self,
        workers: int,
        limits: ParseLimits,
        function: ParseFunction = parse_in_process,
        *,
        max_jobs_per_worker: int = 500,
        wait_seconds: float = 600.0,
        start_seconds: float = 60.0,
    ) -> None:
        if workers < 1:
            raise ValueError("a parser pool needs at least one worker")
        _CONTEXT.set_forkserver_preload(["services.parsing"])
        self.workers = workers
        self.limits = limits
        self.function = function
        self.max_jobs_per_worker = max_jobs_per_worker
        self.wait_seconds = wait_seconds
        self.start_seconds = start_seconds
        self.replaced = 0  # children killed or lost and replaced (a metric for callers and tests)
        # Pipe I/O blocks, so it has threads of its own: an exchange and a start or stop per child.
        self._threads = ThreadPoolExecutor(max_workers=2 * workers + 1, thread_name_prefix="ragmesh-parse")
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._busy: set[_Worker] = set()
        self._starting: set[asyncio.Task[None]] = set()
        self._closed = False
        self._started = False

    async def start(self) -> None:
        """Start every child and wait until all are ready (``parse`` calls it on first use)."""
        if self._started:
            return
        self._started = True
        await asyncio.gather(*(self._start_one(None) for _ in range(self.workers)))

    async def parse(
        self, content: bytes, media_type: str | None, file_name: str | None, limits: ParseLimits | None = None
    ) -> ParsedDocument:
        """Parse in a child process; DocumentRejected naming the problem or the limit breached."""
        limits = limits or self.limits
        if len(content) > limits.max_bytes:  # not worth shipping to a child
            raise DocumentRejected(
                f"the file has {len(content)} bytes, more than the limit of {limits.max_bytes} (max_bytes)"
            )
        worker = await self._acquire()
        reply = await self._run(worker, (content, media_type, file_name, limits), limits)
        status, value = reply
        if status == "ok":
            document: ParsedDocument = value
            return document
        if status == "rejected":
            raise DocumentRejected(str(value))
        if status == "memory":
            raise DocumentRejected(
                f"parsing needed more memory than the limit of {self.limits.memory_mb} MB (memory_mb)"
            )
        raise DocumentRejected(f"the parser failed on this document ({value})")

    async def close(self) -> None:
        """Stop every child (in-flight calls are rejected) and the pool's threads."""
        self._closed = True
        for task in list(self._starting):
            task.cancel()
        await asyncio.gather(*self._starting, return_exceptions=True)
        workers = [*self._busy]
        while not self._idle.empty():
            workers.append(self._idle.get_nowait())
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._threads, w.stop, 2.0) for w in workers))
        self._threads.shutdown(wait=False)

    async def _acquire(self) -> _Worker:
        if self._closed:
            raise Unavailable("the parser pool is closed")
        await self.start()
        try:
            async with asyncio.timeout(self.wait_seconds):
                worker = await self._idle.get()
        except TimeoutError:
            raise Unavailable(f"no parser process became free within {self.wait_seconds:g} s") from None
        self._busy.add(worker)
        return worker

    async def _run(self, worker: _Worker, request: Any, limits: ParseLimits) -> Reply:
        """One exchange with ``worker``; the worker is returned, recycled or replaced."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(limits.time_seconds):
                reply = await loop.run_in_executor(self._threads, worker.exchange, request)
        except TimeoutError:
            self._replace(worker)
            raise DocumentRejected(
                f"parsing took longer than the limit of {limits.time_seconds:g} s (time_seconds)"
            ) from None
        except (EOFError, OSError):
            self._replace(worker)
            raise DocumentRejected(f"the parser process died on this document ({worker.death()})") from None
        except BaseException:  # cancelled mid-parse: the child is busy, so it cannot be reused
            self._replace(worker)
            raise
        worker.jobs += 1
        if reply[0] in ("memory", "error") or worker.jobs >= self.max_jobs_per_worker:
            self._replace(worker)
        else:
            self._busy.discard(worker)
            self._idle.put_nowait(worker)
        return reply

    def _replace(self, worker: _Worker) -> None:
        """Kill ``worker`` and start a replacement in the background."""
        self._busy.discard(worker)
        self.replaced += 1
        worker.signal_kill()
        task = asyncio.get_running_loop().create_task(self._start_one(worker))
        self._starting.add(task)
        task.add_done_callback(self._started_replacement)

    def _started_replacement(self, task: asyncio.Task[None]) -> None:
        self._starting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not start a parser process: %s", task.exception())

    async def _start_one(self, dead: _Worker | None) -> None:
        """Reap ``dead`` (if any) and start a child in its place (a few tries: the pool must not shrink)."""
        loop = asyncio.get_running_loop()
        if dead is not None:
            if self._closed:  # the threads are gone; SIGKILL was sent, the process is reaped at exit
                dead.connection.close()
                return
            await loop.run_in_executor(self._threads, dead.kill)
        for attempt in range(1, START_ATTEMPTS + 1):
            if self._closed:
                return
            worker = await loop.run_in_executor(self._threads, _Worker, self.function, self.limits.memory_mb)
            try:
                await loop.run_in_executor(self._threads, worker.wait_ready, self.start_seconds)
            except TimeoutError:
                await loop.run_in_executor(self._threads, worker.kill)
                if attempt == START_ATTEMPTS:
                    raise
                log.warning("parser process did not start (attempt %d of %d)", attempt, START_ATTEMPTS)
                continue
            except BaseException:
                await loop.run_in_executor(self._threads, worker.kill)
                raise
            if self._closed:
                await loop.run_in_executor(self._threads, worker.kill)
                return
            self._idle.put_nowait(worker)
            return
