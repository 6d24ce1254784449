"""The parser pool's child process: set the memory limit, then parse requests until told to stop.

Runs in a process forked from the multiprocessing forkserver (which preloads the parsing
libraries), so a child starts in milliseconds and shares nothing with the caller's
threads or event loop.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from services.common.config import MIB
from services.parsing.model import DocumentRejected, ParsedDocument, ParseLimits

log = logging.getLogger(__name__)

ParseFunction = Callable[[bytes, str | None, str | None, ParseLimits], ParsedDocument]

#: Replies: ("ok", ParsedDocument) | ("rejected", reason) | ("memory", None) | ("error", description)
Reply = tuple[str, Any]


def serve(connection: Connection, function: ParseFunction, memory_mb: int) -> None:
    """The child's main loop; returns (and the process exits) on None or a closed pipe."""
    limit = memory_mb * MIB
    # RLIMIT_AS bounds the address space: an allocation past it fails with MemoryError
    # instead of pushing the machine into swap or the OOM killer.
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    connection.send(("ready", None))
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        reply = _handle(function, request)
        try:
            connection.send(reply)
        except MemoryError:
            connection.send(("memory", None))
        if reply[0] in ("memory", "error"):
            return  # the heap may be in a bad state: the pool replaces this process


def _handle(function: ParseFunction, request: tuple[bytes, str | None, str | None, ParseLimits]) -> Reply:
    content, media_type, file_name, limits = request
    try:
        return ("ok", function(content, media_type, file_name, limits))
    except DocumentRejected as rejected:
        return ("rejected", rejected.reason)
    except MemoryError:
        return ("memory", None)
    except RecursionError:
        return ("rejected", "the document is nested too deeply to parse")
    except Exception as error:  # a parser bug on odd input must reject one document, not kill the batch
        log.exception("parser failed on %s", file_name)
        return ("error", f"{type(error).__name__}: {error}")
