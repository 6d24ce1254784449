"""A slot for a backend that is loaded after the server starts listening.

The server listens (and answers health checks with NOT_SERVING) while its model loads;
an RPC that arrives in that window gets UNAVAILABLE with a message instead of a crash.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from services.common.errors import Unavailable

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
