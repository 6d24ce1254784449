"""One level of the concurrency sweep: ``concurrency`` callers each streaming queries, with
time to first token, inter-token latency and end-to-end latency per query (NVIDIA's RAG
blueprint method), against the mesh (gRPC through Envoy) or the in-process pipeline."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from ragmesh.client import AsyncRagmeshClient, DoneEvent, TokenEvent


@dataclass(frozen=True)
class Finished:
    """The end of a streamed answer: what its prompt cost."""

    prompt_tokens: int


#: A streamed query: its text as it arrives, then how it finished, by whatever path.
Streamer = Callable[[str], AsyncIterator[str | Finished]]


@dataclass
class LevelResult:
    """Per-query timings of one concurrency level."""

    concurrency: int
    ttft: list[float] = field(default_factory=list)
    itl: list[float] = field(default_factory=list)
    e2e: list[float] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    tokens: int = 0
    errors: int = 0
    wall: float = 0.0
    #: CPU seconds per answered query of each part of the mesh (bench/sweep_cpu.py); empty in-process.
    cpu_per_query: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        """p50/p95 in milliseconds, queries/s, tokens/s, errors."""

        def pct(values: list[float], q: float) -> float:
            if not values:
                return 0.0
            ordered = sorted(values)
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

        answered = len(self.e2e)
        return {
            "concurrency": self.concurrency,
            "ttft_p50_ms": pct(self.ttft, 0.5),
            "ttft_p95_ms": pct(self.ttft, 0.95),
            "itl_p50_ms": pct(self.itl, 0.5),
            "itl_p95_ms": pct(self.itl, 0.95),
            "e2e_p50_ms": pct(self.e2e, 0.5),
            "e2e_p95_ms": pct(self.e2e, 0.95),
            "prompt_tokens_p50": statistics.median(self.prompt_tokens) if self.prompt_tokens else 0,
            "qps": round(answered / self.wall, 3) if self.wall else 0.0,
            "tokens_per_s": round(self.tokens / self.wall, 2) if self.wall else 0.0,
            "errors": self.errors,
        }


async def _one(stream: Streamer, question: str, result: LevelResult) -> None:
    started = time.perf_counter()
    last = started
    first = True
    try:
        async for item in stream(question):
            if isinstance(item, Finished):
                result.prompt_tokens.append(item.prompt_tokens)
                continue
            now = time.perf_counter()
            if first:
                result.ttft.append(now - started)
                first = False
            else:
                result.itl.append(now - last)
            last = now
            result.tokens += 1
    except Exception:  # noqa: BLE001 - an error is a figure of the sweep, not its end
        result.errors += 1
        return
    result.e2e.append(time.perf_counter() - started)


async def run_level(stream: Streamer, questions: list[str], concurrency: int, per_caller: int) -> LevelResult:
    """``concurrency`` callers, each asking ``per_caller`` questions one after the other."""
    result = LevelResult(concurrency)

    async def caller(index: int) -> None:
        for turn in range(per_caller):
            await _one(stream, questions[(index * per_caller + turn) % len(questions)], result)

    started = time.perf_counter()
    await asyncio.gather(*(caller(i) for i in range(concurrency)))
    result.wall = time.perf_counter() - started
    return result


def mesh_streamer(client: AsyncRagmeshClient, collection: str, tokens: int) -> Streamer:
    """Streamed queries through the mesh (cache bypassed, greedy)."""

    async def stream(question: str) -> AsyncIterator[str | Finished]:
        async for event in client.query_stream(question, collection, max_new_tokens=tokens, bypass_cache=True):
            if isinstance(event, TokenEvent):
                yield event.text
            elif isinstance(event, DoneEvent):
                yield Finished(event.usage.prompt_tokens)

    return stream


def median_ratio(mesh: list[float], local: list[float]) -> float:
    """median(mesh) / median(local), 0 when either is empty."""
    if not mesh or not local:
        return 0.0
    return round(statistics.median(mesh) / statistics.median(local), 3)
