"""``ragmesh documents``: what a collection holds — its documents, and one document's chunks."""

from __future__ import annotations

import click

from ragmesh.cli.common import client_from, fail, handles_errors, print_json

_COLLECTION = click.option("-c", "--collection", default="default", show_default=True, help="Collection.")


@click.group()
def documents() -> None:
    """List a collection's documents, or show one document's chunks."""


@documents.command("list")
@_COLLECTION
@click.option("--name", "name_contains", default="", help="Only documents whose id or source contains this.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="Documents per page.")
@click.option("--all", "every_page", is_flag=True, help="Every page, not only the first.")
@click.option("--json", "as_json", is_flag=True, help="Print each document as JSON.")
@click.pass_context
@handles_errors
def list_documents(
    context: click.Context, *, collection: str, name_contains: str, limit: int, every_page: bool, as_json: bool
) -> None:
    """Documents of COLLECTION sorted by id, with their sources and chunk counts."""
    token, shown = "", 0
    with client_from(context) as client:
        while True:
            page = client.documents(collection, page_size=limit, page_token=token, name_contains=name_contains)
            for document in page.documents:
                shown += 1
                if as_json:
                    print_json(document)
                else:
                    click.echo(f"{document.document_id:<40} {document.chunks:>5} chunks  {document.source}")
            token = page.next_page_token
            if not token or not every_page:
                break
    if token and not as_json:
        click.echo(f"(more documents: --all lists every page; {shown} shown)", err=True)
    if not shown and not as_json:
        click.echo(f"no documents in {collection}" + (f" matching {name_contains!r}" if name_contains else ""))


@documents.command("show")
@click.argument("document_id")
@_COLLECTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@handles_errors
def show_document(context: click.Context, document_id: str, collection: str, as_json: bool) -> None:
    """The chunks of DOCUMENT_ID in order."""
    with client_from(context) as client:
        found = client.document(document_id, collection)
    if as_json:
        print_json(found)
        return
    click.echo(
        click.style(f"{found.document_id}  ({found.source or 'no source'}, {len(found.chunks)} chunks)", bold=True)
    )
    for chunk in found.chunks:
        click.echo(click.style(f"\n[{chunk.chunk_id}]", dim=True))
        click.echo(chunk.text)


@documents.command("access")
@click.argument("document_ids", nargs=-1, required=True)
@_COLLECTION
@click.option("--acl", "access", multiple=True, metavar="PRINCIPAL", help="user:NAME or group:NAME; repeatable.")
@click.option("--public", is_flag=True, help="Readable by the whole tenant again (no --acl).")
@click.pass_context
@handles_errors
def set_access(
    context: click.Context, document_ids: tuple[str, ...], collection: str, access: tuple[str, ...], public: bool
) -> None:
    """Give DOCUMENT_IDS a new access list, without re-embedding them (the next query sees it)."""
    if bool(access) == public:
        fail("give --acl PRINCIPAL (repeatable) or --public", 2)
    with client_from(context) as client:
        updated = client.set_document_access(list(document_ids), list(access), collection)
    click.echo(
        f"{updated} chunk(s) of {len(document_ids)} document(s) now readable by {', '.join(access) or 'everyone'}"
    )
