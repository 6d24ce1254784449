"""``ragmesh collections``, ``health``, ``stats`` and ``delete``."""

from __future__ import annotations

import click

from ragmesh.cli.common import EXIT_FAILED, client_from, handles_errors, print_json

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.command()
@_JSON
@click.pass_context
@handles_errors
def collections(context: click.Context, as_json: bool) -> None:
    """List collections with their chunk counts and versions."""
    with client_from(context) as client:
        found = client.collections()
    if as_json:
        print_json([{"name": c.name, "chunks": c.chunks, "version": c.version} for c in found])
        return
    if not found:
        click.echo("no collections yet: index documents with `ragmesh ingest PATH`")
    for collection in found:
        click.echo(f"{collection.name:<24} {collection.chunks:>8} chunks  version {collection.version}")


@click.command()
@_JSON
@click.pass_context
@handles_errors
def health(context: click.Context, as_json: bool) -> None:
    """Every component's health through the mesh (exit 1 unless all are SERVING)."""
    with client_from(context) as client:
        report = client.health()
    if as_json:
        print_json(report)
    else:
        for component in report.components:
            detail = f"  {component.detail}" if component.detail else ""
            click.echo(f"{component.component:<13} {component.status:<12} {component.address}{detail}")
    if not report.all_serving:
        raise SystemExit(EXIT_FAILED)


@click.command()
@_JSON
@click.pass_context
@handles_errors
def stats(context: click.Context, as_json: bool) -> None:
    """Cache hit rates and per-component request counts (of the replica that answers)."""
    with client_from(context) as client:
        report = client.stats()
    if as_json:
        print_json(report)
        return
    cache = report.cache
    click.echo(f"queries       {report.queries}")
    click.echo(
        f"cache         hit rate {cache.hit_rate:.1%}  (L1 {cache.l1_hits}, L2 {cache.l2_hits}, misses {cache.misses}, "
        f"L2 errors {cache.l2_errors}, L2 {'on' if cache.l2_enabled else 'off'})"
    )
    for component in report.components:
        click.echo(f"{component.component:<13} {component.requests} requests, {component.errors} errors")


@click.command()
@click.argument("document_ids", nargs=-1, required=True)
@click.option("-c", "--collection", default="default", show_default=True, help="Collection.")
@click.pass_context
@handles_errors
def delete(context: click.Context, document_ids: tuple[str, ...], collection: str) -> None:
    """Delete documents (all their chunks) from a collection."""
    with client_from(context) as client:
        removed = client.delete_documents(list(document_ids), collection)
    click.echo(f"deleted {removed} chunks of {len(document_ids)} document(s) from {collection}")
