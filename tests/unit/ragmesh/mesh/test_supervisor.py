"""Replicas that die are restarted with exponential back-off (a fake clock, fake processes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ragmesh.mesh.launcher import Mesh
from ragmesh.mesh.supervisor import Supervisor


class _Process:
    def __init__(self) -> None:
        self.code: int | None = None

    def poll(self) -> int | None:
        return self.code


@dataclass
class _Service:
    process: _Process = field(default_factory=_Process)
    address: str = "127.0.0.1:1"

    def log_tail(self, lines: int) -> str:
        return "last words"


@dataclass
class _Replica:
    component: str
    process: _Service = field(default_factory=_Service)
    starts: int = 1

    @property
    def address(self) -> str:
        return self.process.address

    def restart(self, log_dir: Path) -> None:
        self.process = _Service()
        self.starts += 1


@dataclass
class _Plan:
    log_dir: Path = Path("/tmp")


@dataclass
class _Mesh:
    replicas: list[Any]
    plan: _Plan = field(default_factory=_Plan)
    states: int = 0

    def write_state(self) -> None:
        self.states += 1


def test_a_dead_replica_is_restarted_after_a_growing_back_off() -> None:
    now = [100.0]
    generator, embedder = _Replica("generator"), _Replica("embedder")
    mesh = _Mesh([generator, embedder])
    lines: list[str] = []
    supervisor = Supervisor(cast(Mesh, mesh), lines.append, clock=lambda: now[0])
    assert supervisor.tick() == 0
    generator.process.process.code = -9  # killed
    assert supervisor.tick() == 0 and "exited; restarting in 1s" in lines[-1] and "last words" in lines[-1]
    now[0] += 1.0
    assert supervisor.tick() == 1 and generator.starts == 2 and "restarted generator" in lines[-1]
    assert mesh.states == 1 and embedder.starts == 1
    generator.process.process.code = 1  # dies again at once: the back-off doubles
    now[0] += 0.5
    supervisor.tick()
    now[0] += 1.5
    assert supervisor.tick() == 0
    now[0] += 0.5
    assert supervisor.tick() == 1 and generator.starts == 3


def test_the_back_off_is_capped_and_resets_after_a_stable_run() -> None:
    assert [Supervisor.backoff(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    now = [0.0]
    replica = _Replica("retriever")
    supervisor = Supervisor(cast(Mesh, _Mesh([replica])), lambda line: None, clock=lambda: now[0])
    for _ in range(4):  # four quick deaths: the next wait would be 16 s
        replica.process.process.code = 1
        supervisor.tick()
        now[0] += 30.0
        supervisor.tick()
    now[0] += 120.0  # then it stays up for two minutes
    replica.process.process.code = 1
    supervisor.tick()
    now[0] += 1.0
    assert supervisor.tick() == 1  # back to the first back-off
