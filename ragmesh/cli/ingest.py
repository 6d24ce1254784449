"""``ragmesh ingest`` (with a progress bar) and ``ragmesh job`` (background ingestion)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ragmesh.cli.common import EXIT_FAILED, client_from, fail, handles_errors, print_json
from ragmesh.client import IngestProgress, RagmeshClient, files

_JOB_STATES = {0: "unspecified", 1: "pending", 2: "running", 3: "succeeded", 4: "failed"}
_PATHS = click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
_COLLECTION = click.option("-c", "--collection", default="default", show_default=True, help="Target collection.")


@click.command()
@_PATHS
@_COLLECTION
@click.option("--chunk-tokens", type=click.IntRange(0, 8192), default=0, help="Tokens per chunk (0: server default).")
@click.option("--overlap-tokens", type=click.IntRange(0, 8191), default=0, help="Tokens shared by neighbouring chunks.")
@click.option("--batch", type=click.IntRange(1, 1000), default=64, show_default=True, help="Documents per message.")
@click.pass_context
@handles_errors
def ingest(
    context: click.Context,
    *,
    paths: tuple[Path, ...],
    collection: str,
    chunk_tokens: int,
    overlap_tokens: int,
    batch: int,
) -> None:
    """Index PATHS: .txt and .md files (one document each) and .jsonl files (one per line:
    {"id", "text", "metadata"}); folders are searched recursively. Exits 1 if any
    document was rejected."""
    with client_from(context) as client:
        ok = ingest_files(
            client, paths, collection, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens, batch=batch
        )
    if not ok:
        raise SystemExit(EXIT_FAILED)


def ingest_files(
    client: RagmeshClient,
    paths: tuple[Path, ...],
    collection: str,
    *,
    chunk_tokens: int = 0,
    overlap_tokens: int = 0,
    batch: int = 64,
) -> bool:
    """Ingest with a progress bar and print a summary; False when anything was rejected."""
    console = Console(stderr=True, soft_wrap=True, highlight=False)
    loaded = files.load(paths)
    for where, reason in loaded.problems:
        console.print(f"[yellow]skipped[/] {where}: {reason}")
    if not loaded.documents:
        fail("no documents found to ingest")
    with Progress(
        TextColumn("[bold]indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[chunks]} chunks"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("ingest", total=len(loaded.documents), chunks=0)

        def show(progress: IngestProgress) -> None:
            bar.update(task, completed=progress.documents_done + progress.documents_failed, chunks=progress.chunks_done)

        final = client.ingest(
            loaded.documents,
            collection,
            on_progress=show,
            batch_size=batch,
            chunk_tokens=chunk_tokens,
            overlap_tokens=overlap_tokens,
        )
    _summary(console, final, collection, len(loaded.problems))
    return not final.errors and not loaded.problems


def _summary(console: Console, final: IngestProgress, collection: str, skipped_files: int) -> None:
    console.print(
        f"indexed {final.documents_done} of {final.documents_total} documents "
        f"({final.chunks_done} chunks) into [bold]{collection}[/], version {final.collection_version}"
    )
    for document_id, reason in final.errors:
        console.print(f"[red]rejected[/] {document_id}: {reason}")
    if skipped_files:
        console.print(f"[yellow]{skipped_files} file(s) or line(s) skipped[/]")


@click.group()
def job() -> None:
    """Background ingestion jobs for large batches."""


@job.command("submit")
@_PATHS
@_COLLECTION
@click.pass_context
@handles_errors
def job_submit(context: click.Context, paths: tuple[Path, ...], collection: str) -> None:
    """Submit PATHS as a background job and print its id."""
    loaded = files.load(paths)
    for where, reason in loaded.problems:
        click.echo(f"skipped {where}: {reason}", err=True)
    if not loaded.documents:
        fail("no documents found to ingest")
    with client_from(context) as client:
        click.echo(client.submit_job(loaded.documents, collection))


@job.command("status")
@click.argument("job_id")
@click.option("--watch", is_flag=True, help="Follow the job until it finishes.")
@click.pass_context
@handles_errors
def job_status(context: click.Context, job_id: str, watch: bool) -> None:
    """Show a job's state and progress (exit 1 if it failed)."""
    with client_from(context) as client:
        states = client.watch_job(job_id) if watch else [client.job(job_id)]
        last = None
        for state in states:
            last = state
            progress = state.progress
            state_name = _JOB_STATES.get(state.state, "?")
            click.echo(
                f"{state_name:<10} {progress.documents_done}/{progress.documents_total} documents, "
                f"{progress.documents_failed} rejected, {progress.chunks_done} chunks"
                + (f" — {state.error}" if state.error else "")
            )
    if last is not None and last.state == 4:
        raise SystemExit(EXIT_FAILED)


@job.command("show")
@click.argument("job_id")
@click.pass_context
@handles_errors
def job_show(context: click.Context, job_id: str) -> None:
    """Print a job, with every rejected document, as JSON."""
    with client_from(context) as client:
        print_json(client.job(job_id))
