"""Runs an evaluation set through the orchestrator: ingestion, concurrent retrieval-only
queries (IR metrics), then answers for a seeded sample (answer, citation and judge scores)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from ragmesh.client import AsyncRagmeshClient, IngestProgress, RagmeshError
from ragmesh.eval import faithfulness
from ragmesh.eval.answers import answer_scores
from ragmesh.eval.datasets import EvalSet
from ragmesh.eval.judge import JudgeBackend, Verdict, judge, summarize
from ragmesh.eval.metrics import document_ranking, evaluate

T = TypeVar("T")
MAX_CHUNKS = 50  # the orchestrator's top_k limit


@dataclass(frozen=True)
class Settings:
    """How one evaluation runs."""

    collection: str
    k: int = 10
    mode: str | None = None
    answers: int = 0
    seed: int = 0
    concurrency: int = 8
    variant: str = ""
    #: Chunks asked for per query; several chunks of one document count once.
    chunks: int = 30
    citation_threshold: float = 0.5
    max_new_tokens: int | None = None
    #: More query options of every query (a grid cell's rerank, mmr_lambda, candidates, ...).
    query_options: dict[str, Any] = field(default_factory=dict)

    def options(self, **defaults: Any) -> dict[str, Any]:
        """The query options of every call: ``defaults``, the run's mode and variant, then the
        cell's own (a grid's search_mode wins over --mode)."""
        return defaults | {"search_mode": self.mode, "variant": self.variant} | self.query_options


@dataclass
class VariantResult:
    """Everything measured for one variant (or the only run)."""

    variant: str
    metrics: dict[str, float]
    per_query: list[dict[str, Any]]
    answers: list[dict[str, Any]] = field(default_factory=list)
    answer_metrics: dict[str, float] = field(default_factory=dict)
    errors: int = 0
    wall_seconds: float = 0.0


async def ingest(
    client: AsyncRagmeshClient,
    evalset: EvalSet,
    collection: str,
    on_progress: Callable[[IngestProgress], None],
    chunking: tuple[int, int] = (0, 0),
) -> IngestProgress:
    """Index the corpus with ``chunking`` (chunk tokens, overlap; 0: the server's) — documents
    that did not change are skipped by the orchestrator."""
    chunk_tokens, overlap_tokens = chunking
    return await client.ingest(
        evalset.corpus, collection, on_progress=on_progress, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens
    )


async def collection_chunks(client: AsyncRagmeshClient, collection: str) -> int | None:
    """Chunks stored in ``collection``, None when it does not exist."""
    return next((int(c.chunks) for c in await client.collections() if c.name == collection), None)


async def _bounded(limit: asyncio.Semaphore, call: Callable[..., Awaitable[T]], *args: Any) -> T:
    async with limit:
        return await call(*args)


async def retrieve(
    client: AsyncRagmeshClient, evalset: EvalSet, settings: Settings, on_done: Callable[[], None]
) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """Rankings of documents per query (retrieval only, cache bypassed), and per-query
    details (latency, error)."""
    limit = asyncio.Semaphore(settings.concurrency)
    queries = evalset.judged_queries()

    async def one(query_id: str) -> tuple[list[str], dict[str, Any]]:
        started = time.perf_counter()
        try:
            answer = await client.query(
                evalset.queries[query_id],
                settings.collection,
                min(settings.chunks, MAX_CHUNKS),
                retrieval_only=True,
                bypass_cache=True,
                **settings.options(),
            )
        except RagmeshError as error:
            return [], {"error": str(error), "latency_ms": _ms(started)}
        finally:
            on_done()
        return document_ranking(s.document_id for s in answer.sources), {"latency_ms": _ms(started)}

    done = await asyncio.gather(*(_bounded(limit, one, q) for q in queries))
    rankings = {q: ranking for q, (ranking, _) in zip(queries, done, strict=True)}
    details = {q: info for q, (_, info) in zip(queries, done, strict=True)}
    return rankings, details


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def sample(evalset: EvalSet, count: int, seed: int) -> list[str]:
    """A seeded sample of judged queries to answer (those with reference answers first)."""
    judged = evalset.judged_queries()
    with_reference = [q for q in judged if q in evalset.answers] or judged
    return sorted(random.Random(seed).sample(with_reference, min(count, len(with_reference))), key=judged.index)


async def answer_one(
    client: AsyncRagmeshClient, evalset: EvalSet, query_id: str, settings: Settings, judge_backend: JudgeBackend | None
) -> dict[str, Any]:
    """Generate one answer and score it (reference scores, citations, judge)."""
    question, references = evalset.queries[query_id], evalset.answers.get(query_id, [])
    started = time.perf_counter()
    try:
        answer = await client.query(
            question,
            settings.collection,
            bypass_cache=True,
            **settings.options(max_new_tokens=settings.max_new_tokens, temperature=0.0),
        )
    except RagmeshError as error:
        return {"query_id": query_id, "error": str(error)}
    sources = [s.text for s in answer.sources]
    row: dict[str, Any] = {"query_id": query_id, "question": question, "answer": answer.text, "references": references}
    row["latency_ms"] = _ms(started)
    row["prompt_tokens"] = answer.usage.prompt_tokens
    row["sources"] = [s.document_id for s in answer.sources]
    if references:
        row |= answer_scores(answer.text, references)
    row |= faithfulness.citation_scores(answer.text, sources, settings.citation_threshold)
    if judge_backend is not None:
        verdict = await judge(judge_backend, question, answer.text, sources, references)
        row["judge"] = asdict(verdict)
    return row


def answer_summary(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Means of the answer scores over the answered rows, the judge's means and share unparsed."""
    answered = [r for r in rows if "error" not in r]
    summary: dict[str, float] = {"answered": float(len(answered)), "answer_errors": float(len(rows) - len(answered))}
    names = ("exact_match", "token_f1", "containment", *faithfulness.SCORE_NAMES, "prompt_tokens")
    for name in names:
        values = [float(r[name]) for r in answered if name in r]
        if values:
            summary[name] = sum(values) / len(values)
    verdicts = [Verdict(**r["judge"]) for r in answered if "judge" in r]
    if verdicts:
        summary |= summarize(verdicts)
    return summary


async def run_variant(
    client: AsyncRagmeshClient,
    evalset: EvalSet,
    settings: Settings,
    judge_backend: JudgeBackend | None,
    on_done: Callable[[str], None],
) -> VariantResult:
    """IR metrics over every judged query, then the answer sample, for one variant;
    ``on_done("query")`` / ``on_done("answer")`` is called as each one finishes."""
    started = time.perf_counter()
    rankings, details = await retrieve(client, evalset, settings, lambda: on_done("query"))
    errors = [info["error"] for info in details.values() if "error" in info]
    if errors and len(errors) == len(details):
        raise RagmeshError("FAILED", f"every query failed; the first: {errors[0]}")
    scores = evaluate(evalset.qrels, rankings, settings.k)
    per_query = [
        {"query_id": q, "query": evalset.queries[q], "ranking": rankings[q][: settings.k], **details[q]}
        | scores.per_query.get(q, {})
        for q in rankings
    ]
    limit = asyncio.Semaphore(settings.concurrency)
    picked = sample(evalset, settings.answers, settings.seed)

    async def answer_and_report(query_id: str) -> dict[str, Any]:
        row = await answer_one(client, evalset, query_id, settings, judge_backend)
        on_done("answer")
        return row

    rows = await asyncio.gather(*(_bounded(limit, answer_and_report, q) for q in picked))
    return VariantResult(
        variant=settings.variant or "default",
        metrics=scores.aggregate,
        per_query=per_query,
        answers=list(rows),
        answer_metrics=answer_summary(rows) if rows else {},
        errors=len(errors),
        wall_seconds=round(time.perf_counter() - started, 2),
    )
