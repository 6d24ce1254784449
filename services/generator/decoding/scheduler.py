"""Step-level scheduling: concurrent sequences share one decode batch on a dedicated thread.

The decode thread loops: drop rows whose caller cancelled or whose deadline passed, let
waiting sequences join (prefilled together), decode one token for every row, turn tokens
into text, and hand the step's events to the event loop in one ``call_soon_threadsafe``.
A sequence therefore joins at the next step after it arrives and leaves within one step
of being cancelled. Admission is bounded: ``max_batch_size`` rows decode and at most
``max_waiting`` more wait; anything beyond is refused at once with ``Overloaded``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time

from ragmesh.vocabulary import FinishReason
from services.common.errors import Overloaded, Unavailable
from services.generator import metrics
from services.generator.decoding.lm import CausalLMBackend
from services.generator.decoding.sequence import Event, Failed, Sequence

log = logging.getLogger(__name__)
Outbox = list[tuple[Sequence, Event]]


class Scheduler:
    """Owns the decode thread, the waiting queue and the rows of the backend's batch."""

    def __init__(
        self, backend: CausalLMBackend, max_batch_size: int, max_waiting: int, join_wait_seconds: float = 0.0
    ) -> None:
        self.backend = backend
        self.max_batch_size = max_batch_size
        self.max_waiting = max_waiting
        self.join_wait_seconds = join_wait_seconds
        self._waiting: collections.deque[Sequence] = collections.deque()
        self._active: list[Sequence] = []  # in backend row order; touched by the thread only
        self._admitted = 0  # sequences taken from the queue and not yet finished
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Prefill passes and decode steps run, and steps that decoded more than one row.
        self.prefills = 0
        self.steps = 0
        self.shared_steps = 0

    @property
    def in_flight(self) -> int:
        """Sequences in the batch (or being prefilled into it)."""
        return self._admitted

    @property
    def waiting(self) -> int:
        """Sequences waiting for a batch slot."""
        return len(self._waiting)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the decode thread; events are delivered on ``loop``."""
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="decode", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop the thread after its current step; unfinished sequences get UNAVAILABLE."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        leftovers = [*self._waiting, *self._active]
        self._waiting.clear()
        self._active.clear()
        for sequence in leftovers:
            sequence.events.put_nowait(Failed(Unavailable("the generator is shutting down; retry")))

    def submit(self, sequence: Sequence) -> None:
        """Queue ``sequence`` for the batch, or raise Overloaded when batch and queue are full."""
        with self._wake:
            if self._stopping or self._thread is None:
                raise Unavailable("the generator is not running")
            if self._admitted + len(self._waiting) >= self.max_batch_size + self.max_waiting:
                metrics.REJECTED.inc()
                raise Overloaded(
                    f"{self._admitted} sequences decoding and {len(self._waiting)} waiting (limits "
                    f"{self.max_batch_size} and {self.max_waiting}); retry later"
                )
            self._waiting.append(sequence)
            metrics.WAITING.set(len(self._waiting))
            self._wake.notify()

    def cancel(self, sequence: Sequence) -> None:
        """The caller went away: drop a waiting sequence now, a decoding one at the next step."""
        sequence.cancelled = True
        with self._wake:
            if sequence in self._waiting:
                self._waiting.remove(sequence)
                metrics.WAITING.set(len(self._waiting))
                sequence.finish(FinishReason.CANCELLED)

    # The decode thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and not self._waiting and not self._active:
                    self._wake.wait()
                if not self._active and self.join_wait_seconds > 0:
                    self._gather(time.monotonic() + self.join_wait_seconds)
                if self._stopping:
                    return
                newcomers = self._take_newcomers()
            try:
                self._iterate(newcomers)
            except Exception as error:  # a failed step must not kill the thread
                log.exception("decode step failed; failing %d sequences", len(self._active) + len(newcomers))
                self._fail_all(newcomers, error)

    def _gather(self, until: float) -> None:
        """On an idle batch, wait briefly for the companions of a first arrival: requests
        sent together are then prefilled in one pass instead of one, then the rest
        (called with the lock held; each arrival wakes it)."""
        while not self._stopping and len(self._waiting) < self.max_batch_size:
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            self._wake.wait(remaining)

    def _take_newcomers(self) -> list[Sequence]:
        """Move waiting sequences into free batch slots (called with the lock held)."""
        free = self.max_batch_size - len(self._active)
        newcomers: list[Sequence] = []
        while self._waiting and len(newcomers) < free:
            newcomers.append(self._waiting.popleft())
        self._admitted += len(newcomers)
        metrics.WAITING.set(len(self._waiting))
        metrics.IN_FLIGHT.set(self._admitted)
        return newcomers

    def _iterate(self, newcomers: list[Sequence]) -> None:
        outbox: Outbox = []
        try:
            self._drop_departed(outbox)
            arrived = len(newcomers)
            newcomers = [s for s in newcomers if not self._departed(s, outbox)]
            if len(newcomers) < arrived:
                with self._wake:
                    self._admitted -= arrived - len(newcomers)
                    metrics.IN_FLIGHT.set(self._admitted)
            if newcomers:
                tokens = self.backend.join([s.prompt for s in newcomers], [s.sampling for s in newcomers])
                self.prefills += 1
                self._active.extend(newcomers)
                self._advance(newcomers, tokens, len(self._active) - len(newcomers), outbox)
                self._deliver(outbox)  # first tokens go out before the batch's next step
                outbox = []
            if self._active:
                rows = len(self._active)
                metrics.BATCH_SIZE.observe(rows)
                self.steps += 1
                self.shared_steps += rows > 1
                self._advance(list(self._active), self.backend.step(), 0, outbox)
        finally:
            # Sequences that finished or departed before a step failed have left the
            # batch; their final events must reach them even then.
            self._deliver(outbox)

    def _advance(self, sequences: list[Sequence], tokens: list[int], first_row: int, outbox: Outbox) -> None:
        """Hand each sequence its token; rows that finished leave the batch."""
        now = time.perf_counter()
        done = [
            first_row + i for i, (s, t) in enumerate(zip(sequences, tokens, strict=True)) if s.accept(t, now, outbox)
        ]
        metrics.TOKENS.labels("completion").inc(len(tokens))
        self._remove(done)

    def _drop_departed(self, outbox: Outbox) -> None:
        gone = [row for row, s in enumerate(self._active) if self._departed(s, outbox)]
        self._remove(gone)

    def _departed(self, sequence: Sequence, outbox: Outbox) -> bool:
        """Whether the caller cancelled or the deadline passed (then a final event is queued)."""
        if sequence.cancelled:
            outbox.append((sequence, sequence.finish(FinishReason.CANCELLED)))
        elif sequence.deadline is not None and time.monotonic() >= sequence.deadline:
            outbox.append((sequence, sequence.finish(FinishReason.DEADLINE)))
        else:
            return False
        return True

    def _remove(self, rows: list[int]) -> None:
        if not rows:
            return
        self.backend.leave(rows)
        gone = set(rows)
        self._active = [s for row, s in enumerate(self._active) if row not in gone]
        with self._wake:
            self._admitted -= len(rows)
            metrics.IN_FLIGHT.set(self._admitted)

    def _fail_all(self, newcomers: list[Sequence], error: Exception) -> None:
        outbox: Outbox = [(s, Failed(error)) for s in {id(s): s for s in [*self._active, *newcomers]}.values()]
        with self._wake:
            self._admitted = 0
        self._active = []
        self.backend.reset()
        metrics.IN_FLIGHT.set(0)
        self._deliver(outbox)

    def _deliver(self, outbox: Outbox) -> None:
        """Put the step's events on their sequences' queues, in one hop to the event loop."""
        if outbox and self._loop is not None:
            self._loop.call_soon_threadsafe(_put_all, outbox)


def _put_all(outbox: Outbox) -> None:
    for sequence, event in outbox:
        sequence.events.put_nowait(event)
