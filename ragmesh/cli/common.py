"""Shared CLI plumbing: the client from global options, error handling and exit codes."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from ragmesh.client import RagmeshClient, RagmeshError

EXIT_FAILED = 1
EXIT_UNREACHABLE = 3
_UNREACHABLE = {"UNAVAILABLE", "DEADLINE_EXCEEDED"}
F = TypeVar("F", bound=Callable[..., Any])


def client_from(context: click.Context) -> RagmeshClient:
    """A client configured by the global options (address, timeout, API key, TLS files)."""
    options = context.find_root().obj or {}
    return RagmeshClient(
        options.get("address", "127.0.0.1:8080"),
        timeout=options.get("timeout"),
        api_key=options.get("api_key"),
        caller_id=options.get("caller_id", "cli"),
        tls_ca=options.get("tls_ca"),
        tls_cert=options.get("tls_cert"),
        tls_key=options.get("tls_key"),
    )


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``message`` to stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def handles_errors(command: F) -> F:
    """Turn RagmeshError into a message and an exit code (3 when unreachable)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RagmeshError as error:
            hint = " (is the mesh up? start it with `ragmesh up`)" if error.code in _UNREACHABLE else ""
            fail(f"{error.code}: {error.details}{hint}", EXIT_UNREACHABLE if error.code in _UNREACHABLE else 1)

    return wrapper  # type: ignore[return-value]


def print_json(message: Message | dict[str, Any] | list[Any]) -> None:
    """Print a message (or plain data) as indented JSON."""
    data = MessageToDict(message, preserving_proto_field_name=True) if isinstance(message, Message) else message
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))
