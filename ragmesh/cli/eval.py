"""``ragmesh eval DATASET``: retrieval and answer quality through the mesh, and
``ragmesh eval compare DIR ...``: several runs charted side by side."""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ragmesh.cli.common import fail, handles_errors
from ragmesh.client import AsyncRagmeshClient
from ragmesh.eval import report, runner
from ragmesh.eval.datasets import DatasetError, EvalSet, load
from ragmesh.eval.judge import make_judge


class _DefaultRun(click.Group):
    """``ragmesh eval DATASET ...`` runs an evaluation; ``ragmesh eval compare ...`` compares."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultRun)
def eval_group() -> None:
    """Measure retrieval (nDCG, recall, precision, F1, MRR, MAP, hit rate) and answers
    on a data set: `ragmesh eval DATASET [options]` (see `ragmesh eval run --help`),
    or chart earlier runs with `ragmesh eval compare DIR1 DIR2 ...`."""


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0.0:.1f} q/s")


@eval_group.command("run")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--corpus", type=click.Path(path_type=Path), help="Corpus JSONL of a simple JSONL data set.")
@click.option("-c", "--collection", help="Collection to fill and search (default: eval_<data set name>).")
@click.option("--k", type=click.IntRange(1, 50), default=10, show_default=True, help="Cutoff of the metrics.")
@click.option("--mode", type=click.Choice(["dense", "sparse", "hybrid"]), help="Search mode (server default).")
@click.option("--retrieval-only", is_flag=True, help="Skip generation: IR metrics only.")
@click.option("--answers", type=click.IntRange(0), default=None, help="Queries to answer and score [20].")
@click.option("--judge", "judge_target", help="Judge: a generator address (host:port) or an OpenAI-compatible URL.")
@click.option("--judge-model", default="default", show_default=True, help="Model name sent to an OpenAI judge.")
@click.option("--no-judge", is_flag=True, help="Score answers without an LLM judge.")
@click.option(
    "--judge-max-tokens", type=click.IntRange(8, 4096), default=160, show_default=True, help="Judge reply limit."
)
@click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True, help="Queries in flight.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("eval-out"), show_default=True)
@click.option("--variant", "variants", multiple=True, help="Force an experiment variant (repeat: one run each).")
@click.option("--experiment", help="Run once per variant of this server-side experiment (offline A/B).")
@click.option("--no-ingest", is_flag=True, help="Reuse the collection as it is.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the answer sample.")
@click.option("--chunks", type=click.IntRange(1, 50), help="Chunks retrieved per query [3k, at most 50].")
@click.option("--max-new-tokens", type=click.IntRange(1), help="Tokens per generated answer (server default).")
@click.pass_context
@handles_errors
def run(context: click.Context, **options: Any) -> None:
    """Ingest DATASET's corpus (a BEIR folder, or a JSONL with --corpus), run every query
    through the orchestrator and report. Writes OUT/report.json, report.md, chart.png."""
    try:
        evalset = load(options["dataset"], options["corpus"])
    except DatasetError as error:
        fail(str(error), 2)
    if options["retrieval_only"] and options["answers"]:
        raise click.UsageError("--retrieval-only and --answers N > 0 exclude each other")
    root = context.find_root().obj or {}
    asyncio.run(_evaluate(root, evalset, options))


def _collection_name(evalset: EvalSet) -> str:
    return ("eval_" + re.sub(r"[^A-Za-z0-9_]", "_", evalset.name).lower())[:64]


def _settings(evalset: EvalSet, options: dict[str, Any], variant: str) -> runner.Settings:
    answers = 0 if options["retrieval_only"] else (20 if options["answers"] is None else options["answers"])
    return runner.Settings(
        collection=options["collection"] or _collection_name(evalset),
        k=options["k"],
        mode=options["mode"],
        answers=answers,
        seed=options["seed"],
        concurrency=options["concurrency"],
        variant=variant,
        chunks=options["chunks"] or min(3 * options["k"], runner.MAX_CHUNKS),
        max_new_tokens=options["max_new_tokens"],
    )


async def _evaluate(root: dict[str, Any], evalset: EvalSet, options: dict[str, Any]) -> None:
    console = Console(stderr=True, highlight=False)
    for warning in evalset.warnings:
        console.print(f"[yellow]warning[/] {warning}")
    address = root.get("address", "127.0.0.1:8080")
    started = time.perf_counter()
    async with AsyncRagmeshClient(
        address, timeout=root.get("timeout"), api_key=root.get("api_key"), caller_id=root.get("caller_id", "eval")
    ) as client:
        variants = tuple(options["variants"])
        if options["experiment"]:  # offline A/B: every variant the server declares for it
            declared = await client.experiment_report(options["experiment"])
            variants += tuple(v.variant for v in declared.variants if v.variant not in variants)
        plans = [_settings(evalset, options, v) for v in (variants or ("",))]
        collection = plans[0].collection
        if options["no_ingest"]:
            if not await runner.collection_chunks(client, collection):
                fail(f"collection {collection!r} does not exist or is empty; drop --no-ingest to fill it")
        else:
            await _ingest(console, client, evalset, collection)
        backend = None
        if plans[0].answers and not options["no_judge"]:
            backend = make_judge(
                options["judge_target"] or address,
                options["judge_model"],
                os.environ.get("RAGMESH_JUDGE_API_KEY"),
                max_tokens=options["judge_max_tokens"],
            )
        try:
            results = [await _run_one(console, client, evalset, plan, backend) for plan in plans]
        finally:
            if backend is not None:
                await backend.close()
        chunks = await runner.collection_chunks(client, collection)
    extra = {
        "dataset": evalset.name,
        "collection": collection,
        "collection_chunks": chunks,
        "documents": len(evalset.corpus),
        "queries": len(evalset.judged_queries()),
        "address": address,
        "wall_seconds": round(time.perf_counter() - started, 2),
    }
    settings = {k: v for k, v in vars(plans[0]).items() if k not in ("variant",)}
    settings |= {"variants": [p.variant or "default" for p in plans], "judge": options["judge_target"] or address}
    built = report.build(results, settings, extra)
    report.write(built, options["out"])
    _print(built)
    click.echo(f"wrote {options['out'] / 'report.json'}, report.md and chart.png")


async def _ingest(console: Console, client: AsyncRagmeshClient, evalset: EvalSet, collection: str) -> None:
    with Progress(
        TextColumn("[bold]indexing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("ingest", total=len(evalset.corpus))
        final = await runner.ingest(
            client, evalset, collection, lambda p: bar.update(task, completed=p.documents_done + p.documents_failed)
        )
    if final.errors:
        document_id, reason = final.errors[0]
        fail(f"{len(final.errors)} document(s) rejected while indexing; the first, {document_id}: {reason}")


async def _run_one(
    console: Console, client: AsyncRagmeshClient, evalset: EvalSet, plan: runner.Settings, backend: Any
) -> runner.VariantResult:
    prefix = f"{plan.variant}: " if plan.variant else ""
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


def _print(built: dict[str, Any]) -> None:
    variants = built["variants"]
    for key, title in (("metrics", "retrieval"), ("answer_metrics", "answers")):
        if not any(body[key] for body in variants.values()):
            continue
        table = Table(title=f"{built['dataset']}: {title}")
        table.add_column("metric")
        for name in variants:
            table.add_column(name, justify="right")
        names = list(dict.fromkeys(n for body in variants.values() for n in body[key]))
        for name in names:
            table.add_row(name, *(f"{body[key].get(name, float('nan')):.4f}" for body in variants.values()))
        Console().print(table)


@eval_group.command("compare")
@click.argument("folders", nargs=-1, required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option("--out", type=click.Path(path_type=Path), default=Path("eval-compare.png"), show_default=True)
def compare(folders: tuple[Path, ...], out: Path) -> None:
    """Chart the metrics of several `ragmesh eval --out` folders side by side (PNG)."""
    try:
        runs = report.compare(folders, out)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error), 2)
    variants = {label: {"metrics": metrics} for label, metrics in runs.items()}
    click.echo("\n".join(report.table(variants, "metrics")))
    click.echo(f"wrote {out}")


eval_group.name = "eval"
