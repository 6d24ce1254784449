"""Per-tenant limits: a token-bucket request rate and a cap on concurrent streams.

Both answer RESOURCE_EXHAUSTED (:class:`QuotaExceeded`) at once, never queue, and say
when to retry: ``retry_after`` seconds, which the gRPC interceptor sends as trailing
metadata ``retry-after`` and the HTTP API as the ``Retry-After`` header. State is per
process (each orchestrator replica enforces its share); tenants come from the key file,
so the number of buckets is bounded.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from services.common.config import Env
from services.common.errors import Overloaded


class QuotaExceeded(Overloaded):
    """A tenant is over its rate or stream quota; ``retry_after`` says when to try again."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def retry_after_header(self) -> str:
        """Whole seconds, at least 1 (the HTTP ``Retry-After`` form)."""
        return str(max(1, math.ceil(self.retry_after)))


@dataclass(frozen=True)
class QuotaSettings:
    """``RAGMESH_<SERVICE>_TENANT_RATE`` (requests/s, 0 = no limit), ``_TENANT_BURST`` and
    ``_TENANT_STREAMS`` (concurrent streams, 0 = no limit)."""

    rate: float = 0.0
    burst: int = 0
    streams: int = 0

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> QuotaSettings:
        """Read the three variables of ``service``."""
        env = Env(service, environ)
        rate = env.number("tenant_rate", 0.0, 0.0, 1e6)
        return cls(
            rate=rate,
            # Default burst: one second's worth, at least one request.
            burst=env.integer("tenant_burst", max(1, math.ceil(rate)), 1, 1_000_000),
            streams=env.integer("tenant_streams", 0, 0, 1_000_000),
        )


class TenantLimits:
    """The buckets and stream counts of every tenant, safe to share between tasks and threads."""

    def __init__(self, settings: QuotaSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        #: tenant -> (tokens, time of the last update)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._streams: dict[str, int] = {}

    def take(self, tenant: str) -> None:
        """Spend one request of ``tenant``'s rate; QuotaExceeded when its bucket is empty."""
        rate = self.settings.rate
        if rate <= 0:
            return
        burst = float(max(1, self.settings.burst))
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.get(tenant, (burst, now))
            tokens = min(burst, tokens + (now - then) * rate)
            if tokens < 1.0:
                self._buckets[tenant] = (tokens, now)
                wait = (1.0 - tokens) / rate
                raise QuotaExceeded(
                    f"tenant {tenant or 'anonymous'} is over its rate limit of {rate:g} requests/s "
                    f"(burst {burst:g}); retry after {wait:.2f} s",
                    wait,
                )
            self._buckets[tenant] = (tokens - 1.0, now)

    @contextlib.contextmanager
    def stream(self, tenant: str) -> Iterator[None]:
        """Hold one of ``tenant``'s concurrent streams for the block; QuotaExceeded when all are taken."""
        limit = self.settings.streams
        if limit <= 0:
            yield
            return
        with self._lock:
            active = self._streams.get(tenant, 0)
            if active >= limit:
                raise QuotaExceeded(
                    f"tenant {tenant or 'anonymous'} already has {active} streams open (limit {limit}); "
                    "retry after 1 s or when one of them ends",
                    1.0,
                )
            self._streams[tenant] = active + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._streams[tenant] - 1
                if left:
                    self._streams[tenant] = left
                else:
                    del self._streams[tenant]

    def open_streams(self, tenant: str) -> int:
        """Streams ``tenant`` holds now."""
        return self._streams.get(tenant, 0)
