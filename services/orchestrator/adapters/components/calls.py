"""What every gRPC adapter of a component shares: bounded calls whose failures become domain
errors (the one mapping, :func:`services.common.grpc_errors.downstream_error`), and model
facts re-read after ``FACTS_TTL_SECONDS`` so a rolling change of model is noticed without a
restart."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import grpc

from services.common.grpc_errors import downstream_error
from services.orchestrator.core.deadline import Deadline

FACTS_TTL_SECONDS = 30.0
#: Bound of a unary call when the incoming call has no deadline.
DEFAULT_TIMEOUT = 30.0
WRITE_TIMEOUT = 120.0
T = TypeVar("T")


async def call(component: str, operation: Callable[[], Awaitable[T]], not_found: str = "") -> T:
    """Await one call to ``component``; a failure is raised as the domain error of its code
    (NOT_FOUND with ``not_found`` as its message when given)."""
    try:
        return await operation()
    except grpc.aio.AioRpcError as error:
        raise downstream_error(component, error, not_found) from None


class Facts(Generic[T]):
    """A value read from a component and kept for ``FACTS_TTL_SECONDS``."""

    def __init__(self, read: Callable[[Deadline], Awaitable[T]]) -> None:
        self._read = read
        self._value: T | None = None
        self._read_at = 0.0

    async def get(self, deadline: Deadline) -> T:
        """The value, read again when it is older than the TTL."""
        if self._value is None or time.monotonic() - self._read_at > FACTS_TTL_SECONDS:
            self._value = await self._read(deadline)
            self._read_at = time.monotonic()
        return self._value
