"""Domain errors on the gRPC side: the one server interceptor that turns exceptions into
statuses, and the one mapping of a failed downstream call back into a domain error.

Both tables are derived from :class:`services.common.errors.Status` (a status's name is
its gRPC code's name). Errors from a downstream gRPC call keep their status code and say
which call failed. Anything else becomes INTERNAL with a generic message and is logged
with the trace id, so a client never sees a Python traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from services.common.errors import InvalidArgument, RagmeshError, Status, error_class, public_message, status_of
from services.common.interceptors import StreamBehavior, UnaryBehavior, UndecodableRequest, WrappingInterceptor
from services.common.tracing import current_trace_id


def grpc_code(status: Status) -> grpc.StatusCode:
    """The gRPC code of a status (they share names)."""
    return grpc.StatusCode[status.value]


def status_code_for(error: BaseException) -> grpc.StatusCode:
    """The gRPC status code a client sees for ``error`` (no side effects: for metrics too)."""
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code()  # a downstream call failed: its code tells the caller whether to retry
    return grpc_code(status_of(error))


def status_for(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message a client should see for ``error``."""
    code = status_code_for(error)
    if isinstance(error, grpc.aio.AioRpcError):
        return code, f"downstream call failed: {error.details()}"
    return code, public_message(error, current_trace_id())


def downstream_error(component: str, error: grpc.aio.AioRpcError, not_found: str = "") -> RagmeshError:
    """The domain error for a failed call to ``component``: its code kept, its message
    prefixed (or replaced by ``not_found`` for NOT_FOUND, when the caller knows better what
    was missing)."""
    status = Status(error.code().name)
    if status is Status.NOT_FOUND and not_found:
        return error_class(status)(not_found)
    return error_class(status)(f"the {component} answered {status.value}: {error.details() or 'no details'}")


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
