"""``ragmesh eval DATASET --grid SETTING=V1,V2 ...``: every combination of some variant settings
on the same queries — a collection filled per chunking, every cell run, each metric compared
query by query with the first cell (paired t-test, Wilcoxon signed-rank, bootstrap CI of the
mean difference) — printed as tables, written as grid.json, grid.md and heatmap.png."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ragmesh.cli import eval_steps
from ragmesh.eval import grid_report, runner
from ragmesh.eval.datasets import EvalSet
from ragmesh.eval.grid import Axis, Cell, cells, chunkings


def _plan(base: runner.Settings, cell: Cell) -> runner.Settings:
    """The run of one cell: its collection, its query options, its depth."""
    return dataclasses.replace(
        base,
        collection=cell.collection,
        query_options=cell.query_options,
        chunks=cell.top_k or base.chunks,
        variant="",
    )


def headline(k: int, answers: int, metrics: list[str]) -> list[str]:
    """The metrics the tables and the heat map show: nDCG, recall and MRR at k (token F1 of
    the answers when they were scored)."""
    wanted = [f"ndcg@{k}", f"recall@{k}", f"mrr@{k}"] + (["token_f1"] if answers else [])
    return [name for name in wanted if name in metrics]


async def evaluate_grid(root: dict[str, Any], evalset: EvalSet, options: dict[str, Any], axes: list[Axis]) -> None:
    """Fill, run every cell, compare, report."""
    console = Console(stderr=True, highlight=False)
    for warning in evalset.warnings:
        console.print(f"[yellow]warning[/] {warning}")
    address = root.get("address", "127.0.0.1:8080")
    base = eval_steps.settings_of(evalset, options)
    grid = cells(axes, base.collection)
    console.print(f"{len(grid)} cells, {len(chunkings(grid))} collection(s); baseline: {grid[0].label}")
    started = time.perf_counter()
    async with eval_steps.open_client(root) as client:
        await eval_steps.fill(console, client, evalset, chunkings(grid), options["no_ingest"])
        backend = await eval_steps.open_judge(options)
        try:
            results = []
            for index, cell in enumerate(grid, start=1):
                label = f"[{index}/{len(grid)}] {cell.label}"
                result = await eval_steps.run_one(
                    console, client, evalset, _plan(base, cell), backend=backend, label=label
                )
                results.append(grid_report.CellResult(cell, result))
        finally:
            if backend is not None:
                await backend.close()
    eval_steps.judge_failures(console, [r.result for r in results])
    settings = {k: v for k, v in vars(base).items() if k not in ("variant", "query_options", "collection")}
    settings["judge"] = None if backend is None else backend.address
    extra = {
        "dataset": evalset.name,
        "documents": len(evalset.corpus),
        "queries": len(evalset.judged_queries()),
        "address": address,
        "wall_seconds": round(time.perf_counter() - started, 2),
    }
    shown = headline(base.k, base.answers, grid_report.compared_metrics(results))
    built = grid_report.build(results, axes, shown, settings, extra)
    grid_report.write(built, options["out"])
    _print(built)
    click.echo(f"wrote {options['out'] / 'grid.json'}, grid.md and heatmap.png")


def _print(built: dict[str, Any]) -> None:
    console = Console()
    if not console.is_terminal:  # a log or a pipe: wide enough for the seven columns
        console = Console(width=160)
    for metric in built["headline"]:
        table = Table(title=f"{built['dataset']}: {metric} (paired with {built['baseline']})")
        for index, header in enumerate(grid_report.HEADERS):
            table.add_column(header, justify="left" if index == 0 else "right")
        for row in grid_report.rows(built, metric):
            table.add_row(*row)
        console.print(table)
