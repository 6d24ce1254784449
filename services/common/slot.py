"""A slot for a backend that is loaded after the server starts listening.

The server listens (and answers health checks with NOT_SERVING) while its model loads;
an RPC that arrives in that window gets UNAVAILABLE with a message instead of a crash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

import grpc

from services.common.errors import Unavailable
from services.common.server import ServiceDefinition

T = TypeVar("T")


class BackendSlot(Generic[T]):
    """Holds a backend once it is ready; ``get`` before that raises Unavailable."""

    def __init__(self, component: str) -> None:
        self._component = component
        self._value: T | None = None

    def set(self, value: T) -> None:
        """Make the backend available."""
        self._value = value

    def get(self) -> T:
        """The backend, or UNAVAILABLE while it is still loading."""
        if self._value is None:
            raise Unavailable(f"the {self._component} is still loading; retry when its health is SERVING")
        return self._value

    @property
    def ready(self) -> bool:
        """Whether the backend is set."""
        return self._value is not None


class ClosableBackend(Protocol):
    """A backend that releases its resources (threads, model, store) on ``close``."""

    async def close(self) -> None: ...


B = TypeVar("B", bound=ClosableBackend)
S = TypeVar("S")


def slotted_service(
    component: str,
    service_name: str,
    make_servicer: Callable[[BackendSlot[B]], S],
    add_to_server: Callable[[S, grpc.aio.Server], None],
    open_backend: Callable[[], Awaitable[B]],
) -> ServiceDefinition:
    """A service whose servicer reads its backend from a slot that ``open_backend`` fills
    once the server listens; the backend is closed after the server stopped."""
    slot: BackendSlot[B] = BackendSlot(component)
    servicer = make_servicer(slot)

    async def start() -> None:
        slot.set(await open_backend())

    async def stop() -> None:
        if slot.ready:
            await slot.get().close()

    def register(server: grpc.aio.Server) -> None:
        add_to_server(servicer, server)

    return ServiceDefinition(component, [service_name], register, start, stop)
