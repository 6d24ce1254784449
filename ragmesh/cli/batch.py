"""``ragmesh batch``: many queries answered in the background by the workers.

FILE.jsonl holds one query a line: a JSON string, or an object with ``query`` and any of
``collection``, ``top_k`` and the query options of the client (``retrieval_only``,
``rerank``, ``max_new_tokens``, ...).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
from google.protobuf.json_format import MessageToDict

from ragmesh.cli.common import EXIT_FAILED, client_from, fail, handles_errors
from ragmesh.v1 import orchestrator_pb2

_STATES = {1: "PENDING", 2: "RUNNING", 3: "SUCCEEDED", 4: "FAILED"}
_TERMINAL = (orchestrator_pb2.JOB_STATE_SUCCEEDED, orchestrator_pb2.JOB_STATE_FAILED)


@click.group()
def batch() -> None:
    """Batches of queries (up to 10,000) answered by the workers."""


def read_queries(path: Path, collection: str, retrieval_only: bool) -> list[dict[str, Any]]:
    """The queries of a JSONL file; a bad line fails naming its number."""
    queries: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            fail(f"{path}:{number}: not JSON ({error.msg})")
        query = {"query": item} if isinstance(item, str) else item
        if not isinstance(query, dict) or not isinstance(query.get("query"), str):
            fail(f"{path}:{number}: expected a string or an object with a string 'query'")
        query.setdefault("collection", collection)
        if retrieval_only:
            query.setdefault("retrieval_only", True)
        queries.append(query)
    return queries


@batch.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-c", "--collection", default="", help="Collection of the queries that name none.")
@click.option("--retrieval-only", is_flag=True, help="Sources only, no generated answer.")
@click.pass_context
@handles_errors
def batch_submit(context: click.Context, file: Path, collection: str, retrieval_only: bool) -> None:
    """Submit the queries of FILE.jsonl and print the batch id."""
    queries = read_queries(file, collection, retrieval_only)
    if not queries:
        fail(f"{file} holds no query")
    with client_from(context) as client:
        try:
            click.echo(client.submit_batch(queries))
        except TypeError as error:  # an unknown option in a line
            fail(str(error))


@batch.command("status")
@click.argument("batch_id")
@click.option("--wait", is_flag=True, help="Poll until the batch finishes.")
@click.pass_context
@handles_errors
def batch_status(context: click.Context, batch_id: str, wait: bool) -> None:
    """Show a batch's state and progress (exit 1 if it failed)."""
    with client_from(context) as client:
        state = client.batch(batch_id)
        while wait and state.state not in _TERMINAL:
            time.sleep(1.0)
            state = client.batch(batch_id)
    click.echo(
        f"{_STATES.get(state.state, '?'):<10} {state.done}/{state.total} queries, {state.failed} failed"
        + (f" — {state.error}" if state.error else "")
    )
    if state.state == orchestrator_pb2.JOB_STATE_FAILED:
        raise SystemExit(EXIT_FAILED)


@batch.command("results")
@click.argument("batch_id")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="JSONL file to write.")
@click.pass_context
@handles_errors
def batch_results(context: click.Context, batch_id: str, out: Path) -> None:
    """Write every answer (or error) of a batch to --out, one JSON object a line, by index."""
    with client_from(context) as client:
        state = client.batch(batch_id, include_results=True)
    with out.open("w", encoding="utf-8") as sink:
        for result in state.results:
            sink.write(json.dumps(MessageToDict(result, preserving_proto_field_name=True), ensure_ascii=False) + "\n")
    click.echo(f"{len(state.results)} of {state.total} results written to {out} ({_STATES.get(state.state, '?')})")
