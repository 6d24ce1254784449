"""The steps ``ragmesh eval`` runs, for one run or a grid alike: the client (the global options,
TLS included), the judge (where it is, and that it answers before the first verdict),
ingestion and query runs behind progress bars."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from ragmesh.cli.common import EXIT_UNREACHABLE, fail
from ragmesh.client import AsyncRagmeshClient
from ragmesh.eval import runner
from ragmesh.eval.datasets import EvalSet
from ragmesh.eval.judge import GeneratorJudge, JudgeUnreachable, OpenAIJudge, make_judge
from ragmesh.mesh.state import known_mesh, same_address
from ragmesh.vocabulary.tls import ClientTls

Judge = GeneratorJudge | OpenAIJudge


def open_client(root: dict[str, Any]) -> AsyncRagmeshClient:
    """The orchestrator's client from the global options (address, deadline, key, TLS files)."""
    return AsyncRagmeshClient(
        root.get("address", "127.0.0.1:8080"),
        timeout=root.get("timeout"),
        api_key=root.get("api_key"),
        caller_id=root.get("caller_id", "eval"),
        tls_ca=root.get("tls_ca"),
        tls_cert=root.get("tls_cert"),
        tls_key=root.get("tls_key"),
    )


def judge_location(address: str, options: dict[str, Any]) -> tuple[str, ClientTls | None]:
    """Where the judge is: ``--judge``, else the internal listener of the mesh ``ragmesh up``
    started at ``address`` (its mesh.json, ``--mesh-state``); with the client certificate
    that listener requires when the hops behind Envoy are mTLS. UsageError when unknown."""
    mesh = known_mesh(options["mesh_state"])
    target: str | None = options["judge_target"]
    if target:
        tls = mesh.internal_tls if mesh is not None and same_address(target, mesh.internal_address) else None
        return target, tls
    if mesh is not None and mesh.serves(address):
        return mesh.internal_address, mesh.internal_tls
    raise click.UsageError(
        "the LLM judge calls a generator, and Envoy's public listener "
        f"({address}) routes the orchestrator only. Give --judge: Envoy's internal listener "
        "(`ragmesh up` prints it as 'internal: HOST:PORT'), a generator's address, or an "
        f"OpenAI-compatible URL; or --no-judge. (No mesh started by `ragmesh up` at {address} "
        f"was found in {options['mesh_state']}.)"
    )


async def open_judge(options: dict[str, Any]) -> Judge | None:
    """The judge at ``options["judge_at"]`` (see :func:`judge_location`), checked to answer
    (exit 3 saying where and why when it does not); None when no answer is judged."""
    if options["judge_at"] is None:
        return None
    target, tls = options["judge_at"]
    try:
        backend = make_judge(
            target,
            options["judge_model"],
            os.environ.get("RAGMESH_JUDGE_API_KEY"),
            max_tokens=options["judge_max_tokens"],
            tls=tls,
        )
        try:
            await backend.check()
        except BaseException:
            await backend.close()
            raise
    except JudgeUnreachable as error:
        fail(f"{error}; give --judge (or --no-judge)", EXIT_UNREACHABLE)
    return backend


def judge_failures(console: Console, results: list[runner.VariantResult]) -> None:
    """Say how many verdicts are missing because the judge call failed (not a parse problem)."""
    failed = [row["judge"]["error"] for r in results for row in r.answers if row.get("judge", {}).get("failed")]
    if failed:
        console.print(f"[yellow]warning[/] {len(failed)} judge call(s) failed, their answers have no verdict "
                      f"(judge_failed); the first: {escape(failed[0])}")  # fmt: skip


def collection_name(evalset: EvalSet) -> str:
    """The default collection of a data set: eval_<name>."""
    return ("eval_" + re.sub(r"[^A-Za-z0-9_]", "_", evalset.name).lower())[:64]


def settings_of(evalset: EvalSet, options: dict[str, Any], variant: str = "") -> runner.Settings:
    """How one run goes, from the command's options."""
    answers = 0 if options["retrieval_only"] else (20 if options["answers"] is None else options["answers"])
    return runner.Settings(
        collection=options["collection"] or collection_name(evalset),
        k=options["k"],
        mode=options["mode"],
        answers=answers,
        seed=options["seed"],
        concurrency=options["concurrency"],
        variant=variant,
        chunks=options["chunks"] or min(3 * options["k"], runner.MAX_CHUNKS),
        max_new_tokens=options["max_new_tokens"],
    )


async def fill(
    console: Console,
    client: AsyncRagmeshClient,
    evalset: EvalSet,
    targets: dict[str, tuple[int, int]],
    no_ingest: bool,
) -> None:
    """Index the corpus into each collection with its chunking (unchanged documents are skipped
    by the server); with ``no_ingest``, check each is there instead."""
    for collection, chunking in targets.items():
        if not no_ingest:
            await ingest(console, client, evalset, collection, chunking)
        elif not await runner.collection_chunks(client, collection):
            fail(f"collection {collection!r} does not exist or is empty; drop --no-ingest to fill it")


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0.0:.1f} q/s")


async def ingest(
    console: Console,
    client: AsyncRagmeshClient,
    evalset: EvalSet,
    collection: str,
    chunking: tuple[int, int] = (0, 0),
) -> None:
    """Index the corpus into ``collection`` behind a progress bar; exit 1 naming the first
    rejected document."""
    label = f"indexing {collection}" if chunking != (0, 0) else "indexing"
    with Progress(
        TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("ingest", total=len(evalset.corpus))
        final = await runner.ingest(
            client,
            evalset,
            collection,
            lambda p: bar.update(task, completed=p.documents_done + p.documents_failed),
            chunking,
        )
    if final.errors:
        document_id, reason = final.errors[0]
        fail(f"{len(final.errors)} document(s) rejected while indexing; the first, {document_id}: {reason}")


async def run_one(
    console: Console, client: AsyncRagmeshClient, evalset: EvalSet, plan: runner.Settings, *, backend: Any, label: str
) -> runner.VariantResult:
    """One variant (or grid cell) behind progress bars: its queries, then its answers."""
    prefix = f"{label}: " if label else ""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        tasks = {"query": bar.add_task(f"{prefix}queries", total=len(evalset.judged_queries()))}
        if plan.answers:
            count = len(runner.sample(evalset, plan.answers, plan.seed))
            tasks["answer"] = bar.add_task(f"{prefix}answers", total=count, start=False)

        def advance(phase: str) -> None:
            if phase == "answer" and not bar.tasks[tasks["answer"]].started:
                bar.start_task(tasks["answer"])
            bar.advance(tasks[phase])

        return await runner.run_variant(client, evalset, plan, backend, advance)


def default_mesh_state() -> Path:
    """Where ``ragmesh up`` writes mesh.json by default (its --log-dir, var/logs)."""
    from ragmesh.mesh.processes import ROOT

    return ROOT / "var" / "logs" / "mesh.json"
