"""Domain exceptions and the one server interceptor that turns them into gRPC statuses.

Servicers and backends raise these exceptions; they never touch status codes. Errors
from a downstream gRPC call keep their status code and say which call failed. Anything
else becomes INTERNAL with a generic message and is logged with the trace id, so a
client never sees a Python traceback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from services.common.interceptors import StreamBehavior, UnaryBehavior, UndecodableRequest, WrappingInterceptor
from services.common.tracing import current_trace_id

log = logging.getLogger(__name__)


class RagmeshError(Exception):
    """Base of the errors a caller can act on; ``code`` is the gRPC status sent."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(RagmeshError):
    """The request is malformed or out of range; retrying it unchanged will fail again."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(RagmeshError):
    """A named thing (collection, job) does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(RagmeshError):
    """A thing to be created exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS


class Overloaded(RagmeshError):
    """A bounded queue is full; the caller should back off and retry."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(RagmeshError):
    """A dependency cannot be reached or the service is not ready; retry later."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(RagmeshError):
    """The caller's deadline passed before the work finished."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class FailedPrecondition(RagmeshError):
    """The system is not in a state that allows the request (e.g. store not writable)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(RagmeshError):
    """No valid credentials came with the request."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(RagmeshError):
    """The caller is known but may not do this."""

    code = grpc.StatusCode.PERMISSION_DENIED


def status_code_for(error: BaseException) -> grpc.StatusCode:
    """The status code a client sees for ``error`` (no side effects: for metrics too)."""
    if isinstance(error, RagmeshError):
        return error.code
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code()  # a downstream call failed: its code tells the caller whether to retry
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    if isinstance(error, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.INTERNAL


def status_for(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message a client should see for ``error``."""
    code = status_code_for(error)
    if isinstance(error, RagmeshError):
        return code, error.message
    if isinstance(error, grpc.aio.AioRpcError):
        return code, f"downstream call failed: {error.details()}"
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return code, "the operation timed out"
    if code is grpc.StatusCode.CANCELLED:
        return code, "the call was cancelled"
    trace_id = current_trace_id()
    log.exception("unhandled error (trace id %s)", trace_id or "-", exc_info=error)
    return grpc.StatusCode.INTERNAL, f"internal error; quote trace id {trace_id or '-'} when reporting it"


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: Exception) -> None:
    code, message = status_for(error)
    await context.abort(code, message)


class ErrorInterceptor(WrappingInterceptor):
    """Maps exceptions raised by handlers to gRPC statuses (see :func:`status_for`), and
    requests that do not parse to INVALID_ARGUMENT, for unary and streaming calls alike."""

    tolerant_requests = True

    def around_unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        return _guard_unary(behavior)

    def around_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        return _guard_stream(behavior)


def _checked(request: Any) -> Any:
    """The request, with undecodable messages raised as InvalidArgument (streams: on arrival,
    so the messages before a bad one are handled as usual)."""
    if isinstance(request, UndecodableRequest):
        raise InvalidArgument(request.problem)
    if hasattr(request, "__aiter__"):
        return _checked_stream(request)
    return request


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, UndecodableRequest):
            raise InvalidArgument(request.problem)
        yield request


def _guard_unary(behavior: UnaryBehavior) -> UnaryBehavior:
    async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behavior(_checked(request), context)
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as error:  # noqa: BLE001 - this is the one place that maps them
            await _abort(context, error)

    return guarded


def _guard_stream(behavior: StreamBehavior) -> StreamBehavior:
    async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        try:
            async for response in behavior(_checked(request), context):
                yield response
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as error:  # noqa: BLE001 - this is the one place that maps them
            await _abort(context, error)

    return guarded
