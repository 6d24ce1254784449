"""Query latency with an access-list filter against without it, on the same collection.

Indexes N documents (2,000 by default; one in five readable by group:hr only) through the core
over the embedder and retriever engines in this process, flushed as ingestion does, then asks
the same retrieval-only questions (no cache) alternately as a caller that sees everything (no
access clause: auth off) and as a key of group:hr (the clause
``ARRAY_CONTAINS_ANY(access, ["*", "user:alice", "group:hr"])`` in every search), several
rounds, and compares the latencies (embed + search, as the pipeline times them). The last line
is one JSON object.

    python -m bench.access_filter [--documents 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from bench.local_core import LocalCore
from services.common.principal import ANONYMOUS, Principal, bind_principal
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Document, QueryInput
from services.orchestrator.core.facade import Orchestrator
from services.orchestrator.core.ingest.state import IngestBatch

TOPICS = ("docking bay", "oxygen scrubbers", "hydroponics lab", "crew rota", "reactor shielding", "cargo lift")
HR = Principal("bench", ("*",), write=True, user="alice", groups=("hr",))
COLLECTION = "bench_access"


def documents(count: int) -> list[Document]:
    """``count`` short documents about a few topics; every fifth one for group:hr only."""
    return [
        Document(
            f"d{n:05d}",
            f"Note {n} on the {TOPICS[n % len(TOPICS)]}: check item {n % 97} every {n % 13 + 1} days.",
            access=("group:hr",) if n % 5 == 0 else (),
        )
        for n in range(count)
    ]


async def ingest(core: Orchestrator, items: list[Document]) -> None:
    async def batches() -> AsyncIterator[IngestBatch]:
        for first in range(0, len(items), 500):
            yield IngestBatch(COLLECTION, items[first : first + 500])

    async for _ in core.ingest(batches(), Deadline(None)):
        pass


async def one_query(core: Orchestrator, principal: Principal, question: str) -> float:
    """Seconds of one retrieval-only query (no cache) asked as ``principal``."""
    request = QueryInput(question, COLLECTION, top_k=4, retrieval_only=True, bypass_cache=True)

    async def ask() -> float:
        bind_principal(principal)
        began = time.perf_counter()
        answer = await core.answer(request, Deadline(None))
        assert len(answer.sources) == 4
        return time.perf_counter() - began

    return await asyncio.create_task(ask(), context=contextvars.copy_context())


async def run(count: int, rounds: int, workdir: Path) -> dict[str, object]:
    local = LocalCore(workdir)
    core = await local.start()
    try:
        await ingest(core, documents(count))
        questions = [f"How often is the {topic} checked?" for topic in TOPICS] * 4
        for question in questions[:6]:  # warm up both paths
            await one_query(core, ANONYMOUS, question)
            await one_query(core, HR, question)
        plain: list[float] = []
        filtered: list[float] = []
        for round_number in range(rounds):
            for question in questions:
                order = (ANONYMOUS, HR) if round_number % 2 == 0 else (HR, ANONYMOUS)
                for principal in order:
                    (plain if principal is ANONYMOUS else filtered).append(await one_query(core, principal, question))
    finally:
        await local.close()
    p50_plain, p50_filtered = statistics.median(plain), statistics.median(filtered)
    return {
        "documents": count,
        "restricted_share": 0.2,
        "queries_each": len(plain),
        "without_filter_p50_ms": round(p50_plain * 1000, 2),
        "with_filter_p50_ms": round(p50_filtered * 1000, 2),
        "without_filter_mean_ms": round(statistics.mean(plain) * 1000, 2),
        "with_filter_mean_ms": round(statistics.mean(filtered) * 1000, 2),
        "p50_ratio": round(p50_filtered / p50_plain, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ragmesh-bench-access-") as workdir:
        figures = asyncio.run(run(args.documents, args.rounds, Path(workdir)))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
