"""Restarting replicas that die, as Kubernetes would: with exponential back-off and a log
line, instead of running on with one replica fewer (or stopping the mesh when a
component's last replica dies). Envoy routes around a replica while it is down."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ragmesh.mesh.launcher import Mesh, Replica

#: First wait before a restart, doubled after each failure up to MAX_BACKOFF_SECONDS.
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
#: A replica that stayed up this long starts over at the first back-off.
STABLE_SECONDS = 60.0


@dataclass
class _History:
    """Restarts of one replica."""

    attempts: int = 0
    died_at: float = 0.0
    started_at: float = field(default_factory=time.monotonic)


class Supervisor:
    """Call :meth:`tick` every second or so; it restarts the replicas that exited."""

    def __init__(self, mesh: Mesh, report: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.mesh = mesh
        self.report = report
        self.clock = clock
        self.history: dict[str, _History] = {}

    def tick(self) -> int:
        """Restart every replica whose back-off has passed; returns how many were restarted."""
        restarted = 0
        for replica in self.mesh.replicas:
            if replica.process.process.poll() is None:
                continue
            if self._due(replica):
                self._restart(replica)
                restarted += 1
        if restarted:
            self.mesh.write_state()
        return restarted

    def _due(self, replica: Replica) -> bool:
        now = self.clock()
        history = self.history.setdefault(replica.address, _History(started_at=now))
        if not history.died_at:  # first seen dead: report it and start the back-off
            history.died_at = now
            if now - history.started_at >= STABLE_SECONDS:
                history.attempts = 0
            wait = self.backoff(history.attempts)
            tail = replica.process.log_tail(10)
            self.report(f"warning: {replica.component} on {replica.address} exited; restarting in {wait:g}s\n{tail}")
        return now - history.died_at >= self.backoff(history.attempts)

    def _restart(self, replica: Replica) -> None:
        history = self.history[replica.address]
        history.attempts += 1
        history.died_at = 0.0
        history.started_at = self.clock()
        replica.restart(self.mesh.plan.log_dir)
        self.report(f"restarted {replica.component} on {replica.address} (restart {history.attempts})")

    @staticmethod
    def backoff(attempts: int) -> float:
        """Seconds to wait before restart number ``attempts + 1``."""
        return min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2**attempts)
