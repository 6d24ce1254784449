"""Stopping service processes: the replicas of a tier get SIGTERM together and drain side by
side (``ragmesh up``'s Ctrl-C takes one drain per tier, not one per replica)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from ragmesh.mesh.processes import PRIVATE_PORTS, free_port, stop_processes

#: On SIGTERM: say so with a file, then exit 0 once the partner said so too (3 only if it
#: never does within 30 s: a stop that signals one process after the other's exit).
DRAIN_WITH_PARTNER = """
import pathlib, signal, sys, time
mine, partner = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
def drain(*_):
    mine.write_text("draining")
    deadline = time.monotonic() + 30
    while not partner.exists():
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.01)
    sys.exit(0)
signal.signal(signal.SIGTERM, drain)
pathlib.Path(sys.argv[1] + ".ready").write_text("")
while True:
    time.sleep(1)
"""


def wait_for_file(path: Path) -> None:
    """Until ``path`` exists (a child installed its signal handler); bounded."""
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_the_processes_of_a_tier_drain_side_by_side(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    processes = [
        subprocess.Popen([sys.executable, "-c", DRAIN_WITH_PARTNER, str(a), str(b)]),
        subprocess.Popen([sys.executable, "-c", DRAIN_WITH_PARTNER, str(b), str(a)]),
    ]
    try:
        for marker in (a, b):  # both handlers installed before the SIGTERMs
            wait_for_file(Path(f"{marker}.ready"))
        assert stop_processes(processes, timeout=60) == [0, 0]
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_a_process_that_ignores_sigterm_is_killed_at_the_deadline(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    ignore = (
        "import pathlib, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(600)"
    )
    stubborn = subprocess.Popen([sys.executable, "-c", ignore])
    wait_for_file(ready)
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    codes = stop_processes([stubborn, finished], timeout=0.5)
    assert codes == [-9, 0]


def test_free_port_never_hands_out_a_port_twice_before_it_is_bound() -> None:
    # A plan asks for all its ports before any process binds one: with 12,768 candidates, 2,000
    # random picks would repeat one with near certainty (birthday bound) if nothing remembered them.
    ports = [free_port() for _ in range(2000)]
    assert len(set(ports)) == len(ports)


def test_free_ports_come_from_below_the_ephemeral_range() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    if low > PRIVATE_PORTS.start:  # the kernel leaves room below its range
        assert all(PRIVATE_PORTS.start <= port < low for port in ports), ports
    for port in ports:  # and each is free: it can be bound
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
