"""``ragmesh trace``: print one trace from a span file as an indented tree."""

from __future__ import annotations

from pathlib import Path

import click

from ragmesh.cli.common import fail
from ragmesh.mesh.processes import ROOT
from ragmesh.mesh.traces import build_tree, latest_trace_id, read_spans, render


@click.command()
@click.argument("trace_id", required=False)
@click.option(
    "--file",
    "path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=ROOT / "var" / "traces.jsonl",
    show_default="var/traces.jsonl",
    help="JSON-lines span file written by the services (ragmesh up --traces-file).",
)
def trace(trace_id: str | None, path: Path) -> None:
    """Show TRACE_ID (default: the latest trace) as a tree of spans with durations."""
    spans = read_spans(path)
    chosen = (trace_id or "").lower().removeprefix("0x") or latest_trace_id(spans)
    if chosen is None:
        fail(f"no spans in {path}")
    roots = build_tree(spans, chosen)
    if not roots:
        fail(f"trace {chosen} is not in {path} (spans are written in batches: retry in a second)")
    click.echo(f"trace {chosen}")
    for line in render(roots):
        click.echo(line)
