"""``ragmesh keys``: make API keys for the orchestrator's key file, and the global TLS options."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ragmesh.cli.common import fail
from ragmesh.vocabulary.keys import (
    Grant,
    KeyFileError,
    checked_grant,
    digest,
    env_entry,
    new_key,
    parse_file,
    toml_entry,
)

F = TypeVar("F", bound=Callable[..., Any])
_FILE = click.Path(exists=True, dir_okay=False)


def tls_options(command: F) -> F:
    """``--tls-ca/--tls-cert/--tls-key`` (PEM files): connect to Envoy over TLS or mTLS."""
    for name, text in reversed(
        [
            ("--tls-ca", "CA of Envoy's certificate (PEM): connect over TLS."),
            ("--tls-cert", "This client's certificate (PEM), for mTLS."),
            ("--tls-key", "Its private key (PEM)."),
        ]
    ):
        command = click.option(name, type=_FILE, envvar=f"RAGMESH_{name[2:].upper().replace('-', '_')}", help=text)(
            command
        )
    return command


@click.group()
def keys() -> None:
    """API keys of the orchestrator (see docs/security.md)."""


@keys.command("new")
@click.option("--tenant", required=True, help="Tenant the key belongs to (a letter, then letters, digits, '_').")
@click.option(
    "--collections", required=True, help="Collections it may use: names or prefixes ending in '*', comma-separated."
)
@click.option("--read-only", is_flag=True, help="Query only: no ingest, delete or jobs.")
@click.option(
    "--append",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Add the entry to this TOML key file (created, readable by you only) and print only the key.",
)
@click.option("--user", default="", help="The key's holder (documents with access list user:NAME).")
@click.option("--group", "groups", multiple=True, help="A group of the holder (access list group:NAME); repeatable.")
def new(  # noqa: PLR0917 - one parameter per option
    tenant: str, collections: str, read_only: bool, key_file: Path | None, user: str, groups: tuple[str, ...]
) -> None:
    """Print a fresh key (shown once: only its hash is stored) and the key-file entry granting it.
    With --append FILE the entry goes into FILE and stdout is the key alone:
    KEY=$(ragmesh keys new --tenant T --collections '*' --append keys.toml)."""
    key = new_key()
    try:
        grant = checked_grant(
            "ragmesh keys new", digest(key), tenant, collections, not read_only, user=user, groups=list(groups)
        )
    except KeyFileError as error:
        fail(str(error))
    if key_file is not None:
        append_grant(key_file, grant)
        click.echo(f"added tenant {tenant}'s key to {key_file}; the key (shown once):", err=True)
        click.echo(key)
        return
    entry, variable = toml_entry(grant), env_entry(grant)
    click.echo(f"API key (shown once, keep it secret): {key}\n")
    click.echo("Add to the key file (RAGMESH_ORCHESTRATOR_AUTH_KEYS_FILE):\n")
    click.echo(entry)
    click.echo(f"or as an entry of RAGMESH_ORCHESTRATOR_API_KEYS:\n{variable}")


def append_grant(path: Path, grant: Grant) -> None:
    """Add ``grant`` to the TOML key file at ``path`` (created 0600), checking the result parses
    as the orchestrator will parse it; the file is replaced in one rename, or left untouched."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    text = (old.rstrip("\n") + "\n\n" if old.strip() else "") + toml_entry(grant)
    handle, temporary = tempfile.mkstemp(dir=path.resolve().parent, prefix=f".{path.name}.", suffix=".toml")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        parse_file(Path(temporary))
        os.replace(temporary, path)
    except KeyFileError as error:
        os.unlink(temporary)
        fail(f"{path} cannot take the new key: {error} (start a new file, or fix this one)", 2)
