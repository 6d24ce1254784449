"""The time left of an incoming call, handed to every downstream call."""

from __future__ import annotations

import time

from services.common.errors import DeadlineExceeded


class Deadline:
    """A point in time by which the work must be done (or none)."""

    def __init__(self, seconds: float | None) -> None:
        self._end = None if seconds is None else time.monotonic() + seconds

    def expired(self) -> bool:
        """Whether the deadline has passed (never, for an unbounded one)."""
        return self._end is not None and time.monotonic() >= self._end

    def remaining(self, default: float | None = None) -> float | None:
        """Seconds left (``default`` when unbounded); DeadlineExceeded when none are."""
        if self._end is None:
            return default
        left = self._end - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("the request's deadline passed before the answer was complete")
        return left
