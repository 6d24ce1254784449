"""``ragmesh eval DATASET``: retrieval and answer quality through the mesh (per variant, or per
cell of a ``--grid`` of settings), and ``ragmesh eval compare DIR ...``: runs charted side by side."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ragmesh.cli import eval_steps
from ragmesh.cli.common import fail, handles_errors
from ragmesh.cli.eval_grid import evaluate_grid
from ragmesh.cli.eval_steps import default_mesh_state
from ragmesh.eval import report, runner
from ragmesh.eval.datasets import DatasetError, EvalSet, load
from ragmesh.eval.grid import GridError, parse_axes


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


@eval_group.command("run")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--corpus", type=click.Path(path_type=Path), help="Corpus JSONL of a simple JSONL data set.")
@click.option("-c", "--collection", help="Collection to fill and search (default: eval_<data set name>).")
@click.option("--k", type=click.IntRange(1, 50), default=10, show_default=True, help="Cutoff of the metrics.")
@click.option("--mode", type=click.Choice(["dense", "sparse", "hybrid"]), help="Search mode (server default).")
@click.option("--retrieval-only", is_flag=True, help="Skip generation: IR metrics only.")
@click.option("--answers", type=click.IntRange(0), default=None, help="Queries to answer and score [20].")
@click.option(
    "--judge",
    "judge_target",
    help="Judge: a generator address (host:port: Envoy's internal listener, or a generator) or an "
    "OpenAI-compatible URL [default: the internal listener of the mesh `ragmesh up` started at --address].",
)
@click.option("--judge-model", default="default", show_default=True, help="Model name sent to an OpenAI judge.")
@click.option("--no-judge", is_flag=True, help="Score answers without an LLM judge.")
@click.option(
    "--judge-max-tokens", type=click.IntRange(8, 4096), default=160, show_default=True, help="Judge reply limit."
)
@click.option(
    "--mesh-state",
    type=click.Path(path_type=Path),
    default=default_mesh_state,
    show_default="var/logs/mesh.json",
    help="The mesh.json of `ragmesh up` (or its --log-dir): where the default judge is.",
)
@click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True, help="Queries in flight.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("eval-out"), show_default=True)
@click.option("--variant", "variants", multiple=True, help="Force an experiment variant (repeat: one run each).")
@click.option("--experiment", help="Run once per variant of this server-side experiment (offline A/B).")
@click.option(
    "--grid",
    multiple=True,
    metavar="SETTING=V1,V2",
    help="Every combination of these variant settings (repeat per setting), e.g. --grid chunk_tokens=128,256 "
    "--grid rerank=none,mmr: a collection per chunking, each cell compared query by query with the first.",
)
@click.option("--no-ingest", is_flag=True, help="Reuse the collection(s) as they are.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the answer sample and the bootstrap.")
@click.option("--chunks", type=click.IntRange(1, 50), help="Chunks retrieved per query [3k, at most 50].")
@click.option("--max-new-tokens", type=click.IntRange(1), help="Tokens per generated answer (server default).")
@click.pass_context
@handles_errors
def run(context: click.Context, **options: Any) -> None:
    """Ingest DATASET's corpus (a BEIR folder, or a JSONL with --corpus), run every query
    through the orchestrator and report: OUT/report.json, report.md, chart.png. With --grid:
    every combination of the settings, OUT/grid.json, grid.md, heatmap.png."""
    try:
        evalset = load(options["dataset"], options["corpus"])
    except DatasetError as error:
        fail(str(error), 2)
    if options["retrieval_only"] and options["answers"]:
        raise click.UsageError("--retrieval-only and --answers N > 0 exclude each other")
    root = context.find_root().obj or {}
    answers = eval_steps.settings_of(evalset, options).answers
    # Where the judge is, settled before anything is indexed (a usage error costs nothing).
    judged = answers and not options["no_judge"]
    options["judge_at"] = eval_steps.judge_location(root.get("address", "127.0.0.1:8080"), options) if judged else None
    if not options["grid"]:
        asyncio.run(_evaluate(root, evalset, options))
        return
    if options["variants"] or options["experiment"]:
        raise click.UsageError("--grid compares settings itself: drop --variant / --experiment")
    try:
        axes = parse_axes(options["grid"])
    except GridError as error:
        raise click.UsageError(str(error)) from None
    asyncio.run(evaluate_grid(root, evalset, options, axes))


async def _evaluate(root: dict[str, Any], evalset: EvalSet, options: dict[str, Any]) -> None:
    console = Console(stderr=True, highlight=False)
    for warning in evalset.warnings:
        console.print(f"[yellow]warning[/] {warning}")
    address = root.get("address", "127.0.0.1:8080")
    started = time.perf_counter()
    async with eval_steps.open_client(root) as client:
        variants = tuple(options["variants"])
        if options["experiment"]:  # offline A/B: every variant the server declares for it
            declared = await client.experiment_report(options["experiment"])
            variants += tuple(v.variant for v in declared.variants if v.variant not in variants)
        plans = [eval_steps.settings_of(evalset, options, v) for v in (variants or ("",))]
        collection = plans[0].collection
        await eval_steps.fill(console, client, evalset, {collection: (0, 0)}, options["no_ingest"])
        backend = await eval_steps.open_judge(options)
        try:
            results = [
                await eval_steps.run_one(console, client, evalset, p, backend=backend, label=p.variant) for p in plans
            ]
        finally:
            if backend is not None:
                await backend.close()
        chunks = await runner.collection_chunks(client, collection)
    eval_steps.judge_failures(console, results)
    extra = {
        "dataset": evalset.name,
        "collection": collection,
        "collection_chunks": chunks,
        "documents": len(evalset.corpus),
        "queries": len(evalset.judged_queries()),
        "address": address,
        "wall_seconds": round(time.perf_counter() - started, 2),
    }
    settings = {k: v for k, v in vars(plans[0]).items() if k not in ("variant", "query_options")}
    judge = None if backend is None else backend.address
    settings |= {"variants": [p.variant or "default" for p in plans], "judge": judge}
    built = report.build(results, settings, extra)
    report.write(built, options["out"])
    _print(built)
    click.echo(f"wrote {options['out'] / 'report.json'}, report.md and chart.png")


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
