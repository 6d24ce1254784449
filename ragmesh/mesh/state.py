"""``mesh.json``: what a running ``ragmesh up`` tells operators, scripts and the other commands —
every process with its pid, addresses and log, and where Envoy's internal listener is (with
the client certificate it requires when the hops behind Envoy are mTLS).

``ragmesh eval`` reads it to reach the mesh's generator for its LLM judge: Envoy's public
listener routes the orchestrator only, the internal one every component.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragmesh.vocabulary.tls import ClientTls

STATE_FILE = "mesh.json"


def write_state(log_dir: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` as ``log_dir/mesh.json`` by a rename (a reader never sees half of it)."""
    temporary = log_dir / f".{STATE_FILE}.tmp"
    temporary.write_text(json.dumps(state, indent=2))
    path = log_dir / STATE_FILE
    temporary.replace(path)
    return path


@dataclass(frozen=True)
class KnownMesh:
    """A mesh started by ``ragmesh up``, as its state file describes it."""

    #: Envoy's public listener (the orchestrator only).
    address: str
    #: Envoy's internal listener (every component).
    internal_address: str
    #: What the internal listener requires of a caller (mTLS behind Envoy), or None (cleartext).
    internal_tls: ClientTls | None = None

    def serves(self, address: str) -> bool:
        """Whether ``address`` is this mesh's public listener."""
        return same_address(address, self.address)


def same_address(first: str, second: str) -> bool:
    """Whether two ``host:port`` name one local listener (``localhost`` is 127.0.0.1)."""

    def normal(address: str) -> str:
        host, _, port = address.rpartition(":")
        return f"{'127.0.0.1' if host in ('localhost', '0.0.0.0', '') else host}:{port}"

    return normal(first) == normal(second)


def known_mesh(path: Path) -> KnownMesh | None:
    """The mesh ``path`` (a mesh.json, or the log directory holding it) describes; None when
    there is no such file or it is not a mesh state (a stale or foreign file is not an error)."""
    if path.is_dir():
        path = path / STATE_FILE
    try:
        state = json.loads(path.read_text())
        tls = state.get("internal_tls")
        return KnownMesh(
            str(state["address"]),
            str(state["internal_address"]),
            None if not tls else ClientTls(tls["ca"], tls["cert"], tls["key"], source="mesh.json internal_tls "),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
