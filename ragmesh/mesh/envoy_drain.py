"""Drain an Envoy before it stops: ``python -m ragmesh.mesh.envoy_drain`` (a Kubernetes preStop).

Envoy exits at once on SIGTERM, cutting every stream it carries. Run before SIGTERM, this
1. fails Envoy's health (``/ready`` answers 503, so the pod leaves the Service),
2. waits ``--settle`` seconds for that to propagate,
3. drains the client listener gracefully (HTTP/2 GOAWAY, ``Connection: close``: clients
   reconnect to another Envoy while the streams in flight go on; the stats listener
   keeps answering probes),
4. waits until no downstream request is active, or ``--timeout`` seconds passed.
"""

from __future__ import annotations

import argparse
import time
import urllib.error
import urllib.request

ACTIVE_STAT = "downstream_rq_active"


def _admin(port: int, path: str, method: str = "GET") -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return str(response.read().decode())


def active_requests(port: int) -> int:
    """Downstream requests in flight on the client listeners (admin traffic excluded)."""
    text = _admin(port, f"/stats?filter=^http\\.[a-z_]+\\.{ACTIVE_STAT}$")
    total = 0
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if not name.startswith("http.admin.") and value.strip().isdigit():
            total += int(value)
    return total


def drain(port: int, settle: float, timeout: float, poll: float = 1.0) -> int:
    """Run the four steps; return the requests still active at the end."""
    _admin(port, "/healthcheck/fail", "POST")
    time.sleep(settle)
    _admin(port, "/drain_listeners?graceful&inboundonly", "POST")
    deadline = time.monotonic() + timeout
    while (remaining := active_requests(port)) > 0 and time.monotonic() < deadline:
        time.sleep(poll)
    return remaining


def main() -> None:
    """Command line of the preStop hook."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-port", type=int, default=9901)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between failing health and draining")
    parser.add_argument("--timeout", type=float, default=150.0, help="longest wait for streams to finish")
    args = parser.parse_args()
    try:
        remaining = drain(args.admin_port, args.settle, args.timeout)
    except (urllib.error.URLError, OSError) as error:
        # Envoy already gone: nothing to drain; never block the pod's termination.
        print(f"envoy drain: admin not reachable ({error})")
        return
    print(f"envoy drained, {remaining} request(s) still active")


if __name__ == "__main__":
    main()
