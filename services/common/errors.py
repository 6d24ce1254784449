"""Domain exceptions every service raises, each carrying its :class:`Status` — defined once.

Servicers, backends and the orchestrator's core raise these; they never touch a
transport's status codes. Every table a transport needs (the gRPC code, the HTTP status,
the exception for a downstream code) is derived from :class:`Status` and the classes here.
This module imports no transport: :mod:`services.common.grpc_errors` maps to gRPC, the
HTTP app reads :attr:`Status.http`.
"""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum

log = logging.getLogger(__name__)


class Status(StrEnum):
    """A call's outcome, named as gRPC names it (``google.rpc.Code``); ``http`` is the
    HTTP status the Google API design guide (AIP-193) pairs with it."""

    OK = "OK"
    CANCELLED = "CANCELLED"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    INTERNAL = "INTERNAL"
    UNAVAILABLE = "UNAVAILABLE"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    UNKNOWN = "UNKNOWN"

    @property
    def http(self) -> int:
        """The HTTP status of this outcome."""
        return _HTTP[self]

    @property
    def transient(self) -> bool:
        """Whether the same call may succeed later unchanged (worth a retry with back-off)."""
        return self in (Status.UNAVAILABLE, Status.RESOURCE_EXHAUSTED)


_HTTP = {
    Status.OK: 200,
    Status.CANCELLED: 499,
    Status.INVALID_ARGUMENT: 400,
    Status.DEADLINE_EXCEEDED: 504,
    Status.NOT_FOUND: 404,
    Status.ALREADY_EXISTS: 409,
    Status.PERMISSION_DENIED: 403,
    Status.RESOURCE_EXHAUSTED: 429,
    Status.FAILED_PRECONDITION: 400,
    Status.UNIMPLEMENTED: 501,
    Status.INTERNAL: 500,
    Status.UNAVAILABLE: 503,
    Status.UNAUTHENTICATED: 401,
    Status.UNKNOWN: 500,
}


class RagmeshError(Exception):
    """Base of the errors a caller can act on; ``code`` is the status the caller sees."""

    code: Status = Status.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(RagmeshError):
    """The request is malformed or out of range; retrying it unchanged will fail again."""

    code = Status.INVALID_ARGUMENT


class NotFound(RagmeshError):
    """A named thing (collection, job) does not exist."""

    code = Status.NOT_FOUND


class AlreadyExists(RagmeshError):
    """A thing to be created exists already."""

    code = Status.ALREADY_EXISTS


class Overloaded(RagmeshError):
    """A bounded queue is full; the caller should back off and retry."""

    code = Status.RESOURCE_EXHAUSTED


class Unavailable(RagmeshError):
    """A dependency cannot be reached or the service is not ready; retry later."""

    code = Status.UNAVAILABLE


class DeadlineExceeded(RagmeshError):
    """The caller's deadline passed before the work finished."""

    code = Status.DEADLINE_EXCEEDED


class FailedPrecondition(RagmeshError):
    """The system is not in a state that allows the request, and retrying will not help until
    an operator changes it (e.g. no broker configured, store not writable)."""

    code = Status.FAILED_PRECONDITION


class Unauthenticated(RagmeshError):
    """No valid credentials came with the request."""

    code = Status.UNAUTHENTICATED


class PermissionDenied(RagmeshError):
    """The caller is known but may not do this."""

    code = Status.PERMISSION_DENIED


def error_class(code: Status) -> type[RagmeshError]:
    """The exception class raised for ``code`` (Unavailable for codes without one of their
    own, INTERNAL and UNKNOWN among them: a component that failed that way — a replica that
    died mid-stream resets it — is worth retrying elsewhere)."""
    return _BY_STATUS.get(code, Unavailable)


_BY_STATUS: dict[Status, type[RagmeshError]] = {
    kind.code: kind for kind in RagmeshError.__subclasses__() if kind.code is not Status.UNKNOWN
}


def status_of(error: BaseException) -> Status:
    """The status a caller sees for ``error`` (no side effects: for metrics and records too).

    Transports that can also meet their own library's errors (gRPC's ``AioRpcError``)
    check those first; see :func:`services.common.grpc_errors.status_for`.
    """
    if isinstance(error, RagmeshError):
        return error.code
    if isinstance(error, asyncio.CancelledError):
        return Status.CANCELLED
    if isinstance(error, TimeoutError):
        return Status.DEADLINE_EXCEEDED
    return Status.INTERNAL


def public_message(error: BaseException, trace_id: str) -> str:
    """The message a caller sees for ``error``: a domain error's own, else a generic one
    naming ``trace_id`` (the error and its traceback go to the log, never to the caller)."""
    if isinstance(error, RagmeshError):
        return error.message
    status = status_of(error)
    if status is Status.DEADLINE_EXCEEDED:
        return "the operation timed out"
    if status is Status.CANCELLED:
        return "the call was cancelled"
    log.exception("unhandled error (trace id %s)", trace_id or "-", exc_info=error)
    return f"internal error; quote trace id {trace_id or '-'} when reporting it"
