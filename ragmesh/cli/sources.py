"""``ragmesh sources``: the sources the orchestrator keeps its collections in step with
(docs/sources.md) — list them, show one's last sync, sync one now."""

from __future__ import annotations

import datetime

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ragmesh.cli.common import EXIT_FAILED, client_from, handles_errors
from ragmesh.v1 import orchestrator_pb2

_STATES = {0: "never synced", 1: "pending", 2: "running", 3: "succeeded", 4: "failed"}


def _when(seconds: float) -> str:
    if not seconds:
        return "never"
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _every(seconds: float) -> str:
    return f"every {seconds:g}s" if seconds else "when asked"


@click.group()
def sources() -> None:
    """Sources synced into collections (folders, git repositories, S3 buckets, web sites)."""


@sources.command("list")
@click.pass_context
@handles_errors
def list_sources(context: click.Context) -> None:
    """The sources whose collection this key may read."""
    with client_from(context) as client:
        found = client.sources()
    if not found:
        click.echo("no sources (set RAGMESH_ORCHESTRATOR_SOURCES_FILE on the orchestrators and workers)")
    for source in found:
        click.echo(
            f"{source.name:<20} {source.kind:<7} -> {source.collection:<20} {_every(source.every_seconds):<14} "
            f"{source.location}"
        )


def _print_status(status: orchestrator_pb2.SourceStatus) -> None:
    source = status.source
    click.echo(
        f"{source.name} ({source.kind}, {source.location}) -> {source.collection}, {_every(source.every_seconds)}"
    )
    click.echo(f"last sync:    {_STATES.get(status.state, '?')}" + (f" (job {status.job_id})" if status.job_id else ""))
    click.echo(f"started:      {_when(status.started_at)}; finished: {_when(status.finished_at)}")
    click.echo(f"last success: {_when(status.last_success_at)}")
    click.echo(
        f"documents:    {status.documents_added} added, {status.documents_updated} updated, "
        f"{status.documents_unchanged} unchanged, {status.documents_deleted} deleted, {status.documents_failed} failed"
    )
    if status.error:
        click.echo(f"error:        {status.error}")
    for error in status.errors:
        click.echo(f"  failed {error.document_id}: {error.reason}")


@sources.command("status")
@click.argument("name")
@click.pass_context
@handles_errors
def source_status(context: click.Context, name: str) -> None:
    """A source and its last sync (exit 1 if it failed)."""
    with client_from(context) as client:
        status = client.source_status(name)
    _print_status(status)
    if status.state == orchestrator_pb2.JOB_STATE_FAILED:
        raise SystemExit(EXIT_FAILED)


@sources.command("sync")
@click.argument("name")
@click.option("--wait", is_flag=True, help="Follow the sync with a progress bar until it ends (exit 1 if it failed).")
@click.pass_context
@handles_errors
def sync_source(context: click.Context, name: str, wait: bool) -> None:
    """Sync a source now; prints the job id (GetIngestJob / `ragmesh job status` follow it)."""
    with client_from(context) as client:
        job_id = client.sync_source(name)
        click.echo(job_id)
        if not wait:
            return
        console = Console(stderr=True, soft_wrap=True, highlight=False)
        last = None
        with Progress(
            TextColumn(f"[bold]syncing {name}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as bar:
            task = bar.add_task("sync", total=None)
            for job in client.watch_job(job_id):
                last = job
                progress = job.progress
                done = progress.documents_done + progress.documents_failed
                bar.update(task, completed=done, total=progress.documents_total or None)
        _print_status(client.source_status(name))
    if last is None or last.state != orchestrator_pb2.JOB_STATE_SUCCEEDED:
        raise SystemExit(EXIT_FAILED)
