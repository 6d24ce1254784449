"""DynamicBatcher: gathering, per-caller results, bounded queue, cancelled callers."""

from __future__ import annotations

import asyncio
import threading

import pytest

from services.common.batching import BatchLimits, DynamicBatcher
from services.common.errors import Overloaded, Unavailable


class RecordingModel:
    """Doubles its inputs and records the batches it saw."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[list[int]] = []
        self.gate = gate

    def __call__(self, batch: list[int]) -> list[int]:
        if self.gate is not None:
            self.gate.wait(5)
        self.batches.append(list(batch))
        return [item * 2 for item in batch]


async def test_concurrent_callers_share_batches_and_get_their_own_results() -> None:
    model = RecordingModel()
    batcher: DynamicBatcher[int, int] = DynamicBatcher(model, BatchLimits(max_batch_size=8, max_wait_seconds=0.05))
    batcher.start()
    results = await asyncio.gather(*(batcher.submit([i]) for i in range(32)))
    await batcher.close()
    assert results == [[i * 2] for i in range(32)]
    assert len(model.batches) < 32
    assert max(len(b) for b in model.batches) <= 8


async def test_a_multi_item_request_keeps_its_order() -> None:
    model = RecordingModel()
    batcher: DynamicBatcher[int, int] = DynamicBatcher(model, BatchLimits(max_batch_size=3, max_wait_seconds=0.0))
    batcher.start()
    assert await batcher.submit(list(range(10))) == [i * 2 for i in range(10)]
    await batcher.close()
    assert all(len(b) <= 3 for b in model.batches)


async def test_cost_limit_bounds_padded_batch_cost() -> None:
    model = RecordingModel()
    limits = BatchLimits(max_batch_size=100, max_wait_seconds=0.01, max_batch_cost=100)
    batcher: DynamicBatcher[int, int] = DynamicBatcher(model, limits, cost=lambda item: item)
    batcher.start()
    await asyncio.gather(*(batcher.submit([30]) for _ in range(6)))
    await batcher.close()
    assert all(len(b) * max(b) <= 100 for b in model.batches)
    assert sum(len(b) for b in model.batches) == 6


async def test_full_queue_is_refused_at_once() -> None:
    gate = threading.Event()
    model = RecordingModel(gate)
    batcher: DynamicBatcher[int, int] = DynamicBatcher(model, BatchLimits(max_batch_size=1, max_queue=2))
    batcher.start()
    first = asyncio.ensure_future(batcher.submit([1]))
    await asyncio.sleep(0.05)  # the worker holds item 1 in the (gated) model
    queued = asyncio.ensure_future(batcher.submit([2, 3]))
    await asyncio.sleep(0.01)
    with pytest.raises(Overloaded, match="queue full"):
        await batcher.submit([4])
    gate.set()
    assert await first == [2]
    assert await queued == [4, 6]
    await batcher.close()


async def test_items_of_cancelled_callers_are_skipped() -> None:
    gate = threading.Event()
    model = RecordingModel(gate)
    batcher: DynamicBatcher[int, int] = DynamicBatcher(model, BatchLimits(max_batch_size=4, max_wait_seconds=0))
    batcher.start()
    running = asyncio.ensure_future(batcher.submit([1]))
    await asyncio.sleep(0.05)
    abandoned = asyncio.ensure_future(batcher.submit([99]))
    await asyncio.sleep(0.01)
    abandoned.cancel()
    kept = asyncio.ensure_future(batcher.submit([5]))
    await asyncio.sleep(0.01)
    gate.set()
    assert await running == [2]
    assert await kept == [10]
    await batcher.close()
    assert [99] not in model.batches
    assert all(99 not in b for b in model.batches)


async def test_a_failing_batch_fails_its_callers_only() -> None:
    calls = 0

    def flaky(batch: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("model exploded")
        return batch

    batcher: DynamicBatcher[int, int] = DynamicBatcher(flaky, BatchLimits(max_wait_seconds=0))
    batcher.start()
    with pytest.raises(ValueError, match="exploded"):
        await batcher.submit([1])
    assert await batcher.submit([2]) == [2]
    await batcher.close()


async def test_submit_after_close_is_unavailable() -> None:
    batcher: DynamicBatcher[int, int] = DynamicBatcher(RecordingModel(), BatchLimits())
    batcher.start()
    await batcher.close()
    with pytest.raises(Unavailable):
        await batcher.submit([1])


async def _first_then_second_after_a_gap(limits: BatchLimits) -> list[list[int]]:
    """Submit [1], then [2] 0.1 s later (an idle model in between); the batches the model saw."""
    model = RecordingModel()
    batcher: DynamicBatcher[int, int] = DynamicBatcher(model, limits)
    batcher.start()
    first = asyncio.ensure_future(batcher.submit([1]))
    await asyncio.sleep(0.1)
    assert await batcher.submit([2]) == [4]
    assert await first == [2]
    await batcher.close()
    return model.batches


async def test_an_idle_gap_ends_the_wait_early() -> None:
    limits = BatchLimits(max_batch_size=8, max_wait_seconds=5.0, max_idle_seconds=0.01)
    # The first item is not held for the 5 s max wait: the 0.1 s gap ends its batch.
    assert await _first_then_second_after_a_gap(limits) == [[1], [2]]


@pytest.mark.parametrize("idle", [None, 5.0])
async def test_without_a_short_idle_limit_a_gap_does_not_end_the_wait(idle: float | None) -> None:
    limits = BatchLimits(max_batch_size=2, max_wait_seconds=5.0, max_idle_seconds=idle)
    # The control case: the first item waits and the second joins it (the full batch goes at once).
    assert await _first_then_second_after_a_gap(limits) == [[1, 2]]


async def test_a_burst_fills_one_batch_despite_a_short_idle_limit() -> None:
    model = RecordingModel()
    limits = BatchLimits(max_batch_size=8, max_wait_seconds=5.0, max_idle_seconds=0.01)
    batcher: DynamicBatcher[int, int] = DynamicBatcher(model, limits)
    batcher.start()
    burst = await asyncio.gather(*(batcher.submit([i]) for i in range(8)))
    await batcher.close()
    assert burst == [[i * 2] for i in range(8)]
    assert model.batches == [list(range(8))]
