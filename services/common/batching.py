"""Dynamic batching: concurrent callers' items gathered into one model batch.

Callers ``submit`` their items from the event loop and await the results. A dedicated
worker thread owns the model: it takes items from a bounded queue into a batch — up to
``max_batch_size`` items and ``max_batch_cost`` (e.g. padded tokens) — runs the model, and
hands the results back to the loop. Because the thread forms the next batch itself the
moment the model is free, the model never waits for a busy event loop; only when it is
idle does a batch wait (at most ``max_wait_seconds``, or until no item arrived for
``max_idle_seconds``) for companions of a first arrival. A full queue refuses new items
at once with :class:`~services.common.errors.Overloaded`; items of callers that went away
are skipped.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from services.common.errors import Overloaded, Unavailable

log = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class BatchLimits:
    """How big a batch may grow and how long it may wait to fill."""

    max_batch_size: int = 32
    max_wait_seconds: float = 0.002
    #: Stop waiting early when no new item arrived for this long (None: wait the whole
    #: max wait). A burst fills the batch; a lone request is not held for max_wait.
    max_idle_seconds: float | None = None
    max_queue: int = 1024
    #: Upper bound of ``len(batch) * max(cost)`` (e.g. padded tokens); 0 means no bound.
    max_batch_cost: int = 0


@dataclass
class _Pending(Generic[ItemT, ResultT]):
    item: ItemT
    cost: int
    future: asyncio.Future[ResultT]


class DynamicBatcher(Generic[ItemT, ResultT]):
    """Batches items of concurrent callers for ``run_batch`` (called in its own thread)."""

    def __init__(
        self,
        run_batch: Callable[[list[ItemT]], Sequence[ResultT]],
        limits: BatchLimits,
        cost: Callable[[ItemT], int] = lambda _: 1,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._run_batch = run_batch
        self._limits = limits
        self._cost = cost
        self._on_batch = on_batch
        self._queue: collections.deque[_Pending[ItemT, ResultT]] = collections.deque()
        self._arrived = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    @property
    def queued(self) -> int:
        """Items waiting for a batch."""
        return len(self._queue)

    def start(self) -> None:
        """Start the worker thread (results go to the running event loop)."""
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._work, name="batcher", daemon=True)
            self._thread.start()

    async def close(self) -> None:
        """Stop the worker; callers still waiting get UNAVAILABLE."""
        thread, self._thread = self._thread, None
        if thread is not None:
            with self._arrived:
                self._stopping = True
                self._arrived.notify()
            await asyncio.to_thread(thread.join)
        while self._queue:
            pending = self._queue.popleft()
            if not pending.future.done():
                pending.future.set_exception(Unavailable("the service is shutting down"))

    async def submit(self, items: Sequence[ItemT]) -> list[ResultT]:
        """Queue ``items`` and return their results in order; Overloaded if the queue is full."""
        if self._thread is None:
            raise Unavailable("the batcher is not running")
        if len(self._queue) + len(items) > self._limits.max_queue:
            raise Overloaded(f"queue full ({len(self._queue)} of {self._limits.max_queue} items waiting); retry later")
        loop = asyncio.get_running_loop()
        pending = [_Pending(item, self._cost(item), loop.create_future()) for item in items]
        with self._arrived:
            self._queue.extend(pending)
            self._arrived.notify()
        try:
            return list(await asyncio.gather(*(p.future for p in pending)))
        except asyncio.CancelledError:
            for p in pending:
                p.future.cancel()  # the worker skips them
            raise

    def _work(self) -> None:
        """The worker thread: batch, run, hand results back, repeat."""
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if not batch:
                continue
            if self._on_batch is not None:
                self._on_batch(len(batch))
            try:
                results: Sequence[ResultT] | BaseException = self._run_batch([p.item for p in batch])
            except Exception as error:
                log.exception("batch of %d failed", len(batch))
                results = error
            assert self._loop is not None
            self._loop.call_soon_threadsafe(_deliver, batch, results)

    def _next_batch(self) -> list[_Pending[ItemT, ResultT]] | None:
        """The next batch, or None when stopping. Items that queued up while the model was
        busy go at once; from an idle model, a batch waits for companions of a first item."""
        with self._arrived:
            waited = False
            while not self._queue and not self._stopping:
                self._arrived.wait()
                waited = True
            if self._stopping:
                return None
            return self._gather(wait=waited)

    def _gather(self, wait: bool) -> list[_Pending[ItemT, ResultT]]:
        """Take items into a batch (called holding the condition's lock)."""
        deadline = time.monotonic() + self._limits.max_wait_seconds
        batch: list[_Pending[ItemT, ResultT]] = []
        largest = 0
        while len(batch) < self._limits.max_batch_size:
            if not self._queue:
                remaining = deadline - time.monotonic()
                if self._limits.max_idle_seconds is not None:
                    remaining = min(remaining, self._limits.max_idle_seconds)
                if not wait or remaining <= 0 or not self._arrived.wait(remaining) or self._stopping:
                    break
                continue
            candidate = self._queue[0]
            if candidate.future.done():  # its caller went away
                self._queue.popleft()
                continue
            cost = max(largest, candidate.cost) * (len(batch) + 1)
            if batch and self._limits.max_batch_cost and cost > self._limits.max_batch_cost:
                break
            largest = max(largest, candidate.cost)
            batch.append(self._queue.popleft())
        return batch


def _deliver(batch: list[_Pending[ItemT, ResultT]], results: Sequence[ResultT] | BaseException) -> None:
    """On the event loop: resolve each caller's future (skipping callers that left)."""
    for index, pending in enumerate(batch):
        if pending.future.done():
            continue
        if isinstance(results, BaseException):
            pending.future.set_exception(results)
        else:
            pending.future.set_result(results[index])
