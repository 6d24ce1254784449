"""``ragmesh ingest`` (with a progress bar) and ``ragmesh job`` (background ingestion)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ragmesh.cli.common import EXIT_FAILED, client_from, fail, handles_errors, print_json
from ragmesh.client import IngestProgress, RagmeshClient, files
from ragmesh.vocabulary.experiments.model import ExperimentConfigError, ingest_targets
from ragmesh.vocabulary.experiments.parsing import load_experiments

_JOB_STATES = {0: "unspecified", 1: "pending", 2: "running", 3: "succeeded", 4: "failed"}
_PATHS = click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
#: Bytes of documents per Ingest message (the server accepts 64 MiB by default).
_COLLECTION = click.option("-c", "--collection", default="default", show_default=True, help="Target collection.")


@click.command()
@_PATHS
@_COLLECTION
@click.option("--chunk-tokens", type=click.IntRange(0, 8192), default=0, help="Tokens per chunk (0: server default).")
@click.option("--overlap-tokens", type=click.IntRange(0, 8191), default=0, help="Tokens shared by neighbouring chunks.")
@click.option("--batch", type=click.IntRange(1, 1000), default=64, show_default=True, help="Documents per message.")
@click.option("--include", multiple=True, metavar="GLOB", help="Only files matching (path or name); repeatable.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching (path or name); repeatable.")
@click.option("--sync", is_flag=True, help="Also delete the documents of FOLDER (one folder) whose files are gone.")
@click.option(
    "--acl", "access", multiple=True, metavar="PRINCIPAL", help="Only user:NAME / group:NAME may read them; repeatable."
)
@click.option(
    "--experiment",
    help="Fill the collection of every variant of this experiment (each with its chunking; see --experiments-file).",
)
@click.option(
    "--experiments-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="RAGMESH_ORCHESTRATOR_EXPERIMENTS_FILE",
    help="The orchestrator's experiments file [$RAGMESH_ORCHESTRATOR_EXPERIMENTS_FILE].",
)
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
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    sync: bool,
    access: tuple[str, ...],
    experiment: str | None,
    experiments_file: Path | None,
) -> None:
    """Index PATHS: PDF, DOCX, XLSX, HTML, CSV, Markdown and text files (parsed by the server,
    one document each, id = the path relative to the folder given) and .jsonl files (one
    document per line: {"id", "text", "metadata"}); folders are searched recursively.
    Unchanged files are skipped. Exits 1 if any file was rejected (the others are indexed)."""
    if sync and (len(paths) != 1 or not paths[0].is_dir()):
        fail("--sync takes exactly one folder")
    targets = [(collection, chunk_tokens, overlap_tokens)]
    if experiment:
        targets = _experiment_targets(experiment, experiments_file, collection, chunk_tokens, overlap_tokens)
    ok = True
    with client_from(context) as client:
        for target, chunk, overlap in targets:
            if experiment:
                click.echo(f"collection {target} (chunks of {chunk} tokens, overlap {overlap})", err=True)
            ok = (
                ingest_files(
                    client,
                    paths,
                    target,
                    chunk_tokens=chunk,
                    overlap_tokens=overlap,
                    batch=batch,
                    include=include,
                    exclude=exclude,
                    sync=sync,
                    access=access,
                )
                and ok
            )
    if not ok:
        raise SystemExit(EXIT_FAILED)


def _experiment_targets(
    name: str, path: Path | None, collection: str, chunk_tokens: int, overlap_tokens: int
) -> list[tuple[str, int, int]]:
    """(collection, chunk tokens, overlap) of every collection the experiment's variants read."""
    if path is None:
        fail("--experiment needs --experiments-file (or $RAGMESH_ORCHESTRATOR_EXPERIMENTS_FILE)", 2)
    try:
        found = load_experiments(str(path)).get(name)
    except ExperimentConfigError as error:
        fail(str(error), 2)
    if found is None:
        fail(f"no experiment {name!r} in {path}", 2)
    # 0 leaves chunking to the server; a variant that sets none keeps that.
    return [
        (t.collection, t.chunk_tokens, t.overlap_tokens)
        for t in ingest_targets(found, collection, chunk_tokens, overlap_tokens)
    ]


def ingest_files(
    client: RagmeshClient,
    paths: tuple[Path, ...],
    collection: str,
    *,
    chunk_tokens: int = 0,
    overlap_tokens: int = 0,
    batch: int = 64,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    sync: bool = False,
    access: Sequence[str] = (),
) -> bool:
    """Ingest with a progress bar (documents and pages) and print a summary naming every
    rejected file; False when anything was rejected or skipped."""
    console = Console(stderr=True, soft_wrap=True, highlight=False)
    loaded = files.load(paths, include=include, exclude=exclude, raw_text=True)
    if access:
        loaded.documents = [dataclasses.replace(d, access=tuple(access)) for d in loaded.documents]
    for where, reason in loaded.problems:
        console.print(f"[yellow]skipped[/] {where}: {reason}")
    if not loaded.documents and not sync:
        fail("no documents found to ingest")
    # The sources of a folder's files start with the folder as given (see files.load).
    prefix = f"{str(paths[0]).rstrip('/')}/" if sync else ""
    with Progress(
        TextColumn("[bold]indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("documents, {task.fields[pages]} pages, {task.fields[chunks]} chunks"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("ingest", total=len(loaded.documents), chunks=0, pages=0)

        def show(progress: IngestProgress) -> None:
            done = progress.documents_done + progress.documents_failed
            bar.update(task, completed=done, chunks=progress.chunks_done, pages=progress.pages_done)

        final = client.ingest(
            loaded.documents,
            collection,
            show,
            batch_size=batch,
            chunk_tokens=chunk_tokens,
            overlap_tokens=overlap_tokens,
            sync_prefix=prefix,
        )
    _summary(console, final, collection, len(loaded.problems))
    return not final.errors and not loaded.problems


def _summary(console: Console, final: IngestProgress, collection: str, skipped_files: int) -> None:
    console.print(
        f"indexed {final.documents_done} of {final.documents_total} documents "
        f"({final.documents_unchanged} unchanged, {final.pages_done} PDF pages, {final.chunks_done} chunks) "
        f"into [bold]{collection}[/], version {final.collection_version}"
    )
    if final.documents_deleted:
        console.print(f"deleted {final.documents_deleted} document(s) whose files are gone")
    for document_id, reason in final.errors:
        console.print(f"[red]rejected[/] {document_id}: {reason}")
    if final.errors:
        console.print(f"[red]{len(final.errors)} file(s) rejected[/]; every other file is indexed")
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
