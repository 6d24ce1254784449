"""Dynamic batching: concurrent callers' items gathered into one model batch.

Callers ``submit`` their items and await the results. One worker task takes items from
a bounded queue into a batch — up to ``max_batch_size`` items and ``max_batch_cost``
(e.g. padded tokens), waiting at most ``max_wait_seconds`` for the batch to fill — and
runs the model on it in a worker thread, so the event loop keeps accepting requests
while the model computes. A full queue refuses new items at once with
:class:`~services.common.errors.Overloaded`; items of callers that went away are
skipped.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
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
    """Batches items of concurrent callers for ``run_batch`` (called in a worker thread)."""

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
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batcher")
        self._worker: asyncio.Task[None] | None = None
        self.batches_run = 0

    @property
    def queued(self) -> int:
        """Items waiting for a batch."""
        return len(self._queue)

    def start(self) -> None:
        """Start the worker task (on the running event loop)."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="batcher")

    async def close(self) -> None:
        """Stop the worker; callers still waiting get UNAVAILABLE."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        while self._queue:
            pending = self._queue.popleft()
            if not pending.future.done():
                pending.future.set_exception(Unavailable("the service is shutting down"))
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, items: Sequence[ItemT]) -> list[ResultT]:
        """Queue ``items`` and return their results in order; Overloaded if the queue is full."""
        if self._worker is None:
            raise Unavailable("the batcher is not running")
        if len(self._queue) + len(items) > self._limits.max_queue:
            raise Overloaded(f"queue full ({len(self._queue)} of {self._limits.max_queue} items waiting); retry later")
        loop = asyncio.get_running_loop()
        pending = [_Pending(item, self._cost(item), loop.create_future()) for item in items]
        self._queue.extend(pending)
        self._arrived.set()
        try:
            return list(await asyncio.gather(*(p.future for p in pending)))
        except asyncio.CancelledError:
            for p in pending:
                p.future.cancel()  # the worker skips them
            raise

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            if self._on_batch is not None:
                self._on_batch(len(batch))
            self.batches_run += 1
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, [p.item for p in batch])
            except Exception as error:
                log.exception("batch of %d failed", len(batch))
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(error)
                continue
            for p, result in zip(batch, results, strict=True):
                if not p.future.done():
                    p.future.set_result(result)

    async def _next_batch(self) -> list[_Pending[ItemT, ResultT]]:
        """Wait for a first item, then gather more until full, over cost, max wait, or idle."""
        while not self._queue:
            self._arrived.clear()
            await self._arrived.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._limits.max_wait_seconds
        batch: list[_Pending[ItemT, ResultT]] = []
        largest = 0
        while len(batch) < self._limits.max_batch_size:
            if not self._queue:
                remaining = deadline - loop.time()
                if self._limits.max_idle_seconds is not None:
                    remaining = min(remaining, self._limits.max_idle_seconds)
                if remaining <= 0 or not await self._wait_for_arrival(remaining):
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

    async def _wait_for_arrival(self, timeout: float) -> bool:
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            return False
        return True
