"""milvus-lite's data path: one process owns it (an advisory lock on its ``LOCK`` file), so a
retriever checks the lock itself before opening it, to say why and what to do instead of
pymilvus' bare "Open local milvus failed"."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from services.common.server import StartupError


def claim_local_path(uri: str) -> Path:
    """The absolute milvus-lite path (parents created); StartupError when another process holds it."""
    path = Path(uri).expanduser().resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StartupError(f"cannot create {path.parent} for the milvus-lite data: {error}") from None
    # milvus-lite would log the lock failure and pymilvus report only "Open local milvus
    # failed"; checking first gives the operator the reason.
    if path_is_locked(path):
        raise StartupError(locked_message(path))
    return path


def path_is_locked(path: Path) -> bool:
    """Whether another process holds milvus-lite's advisory lock on ``path``."""
    lock = path / "LOCK"
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES):
            return True
        raise
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def locked_message(path: Path) -> str:
    """Why a locked path cannot be used, and what to do instead."""
    return (
        f"the milvus-lite data at {path} is in use by another process (one process owns a milvus-lite path); "
        "stop it, set RAGMESH_RETRIEVER_URI to another path, or use a Milvus server (http://host:19530) "
        "to run several retrievers"
    )
