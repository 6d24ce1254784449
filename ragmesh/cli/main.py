"""The ``ragmesh`` command group and its global options."""

from __future__ import annotations

import os

import click

from ragmesh.cli.admin import collections, delete, health, stats
from ragmesh.cli.batch import batch
from ragmesh.cli.documents import documents
from ragmesh.cli.eval import eval_group
from ragmesh.cli.experiments import experiments, feedback
from ragmesh.cli.ingest import ingest, job
from ragmesh.cli.keys import keys, tls_options
from ragmesh.cli.mcp import mcp
from ragmesh.cli.query import ask
from ragmesh.cli.sources import sources
from ragmesh.cli.trace import trace
from ragmesh.cli.up import up


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--address",
    default=lambda: os.environ.get("RAGMESH_ADDRESS", "127.0.0.1:8080"),
    show_default="$RAGMESH_ADDRESS or 127.0.0.1:8080",
    help="Envoy (or an orchestrator) to talk to, host:port.",
)
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Deadline of each call, in seconds.")
@click.option("--api-key", envvar="RAGMESH_API_KEY", help="Sent as 'authorization: Bearer <key>'.")
@click.option("--caller-id", default="cli", show_default=True, help="Caller id (experiments, quotas).")
@tls_options
@click.version_option(package_name="ragmesh")
@click.pass_context
def cli(context: click.Context, address: str, timeout: float, api_key: str | None, caller_id: str, **tls: str) -> None:
    """ragmesh: retrieval-augmented answers from a mesh of gRPC services.

    Start the mesh with `ragmesh up`, index files with `ragmesh ingest`, then
    `ragmesh ask "a question"`. Exit codes: 0 ok, 1 failed, 2 usage error,
    3 the mesh cannot be reached.
    """
    context.obj = {"address": address, "timeout": timeout, "api_key": api_key, "caller_id": caller_id, **tls}


COMMANDS = (
    up,
    ingest,
    job,
    batch,
    ask,
    collections,
    documents,
    health,
    stats,
    delete,
    trace,
    experiments,
    feedback,
    keys,
    eval_group,
    mcp,
    sources,
)
for command in COMMANDS:
    cli.add_command(command)


def main() -> None:
    """Entry point of the ``ragmesh`` console script."""
    cli(prog_name="ragmesh")
