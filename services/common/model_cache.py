"""A cache of converted models (a GGUF de-quantised for transformers, an ONNX export),
shared by the generator and the embedder.

An entry is built in a temporary directory and renamed into place, so two processes
starting at once never see half a model: the first rename wins and the other drops its copy.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)
#: Written last into a cache entry; an entry without it is ignored.
COMPLETE_MARKER = "ragmesh-complete"


def cached_conversion(key: str, cache_dir: Path, convert: Callable[[Path], None]) -> Path:
    """The directory ``cache_dir/key``, made by ``convert(tmp_dir)`` unless it exists."""
    final = cache_dir / key
    if (final / COMPLETE_MARKER).is_file():
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache_dir))
    try:
        convert(scratch)
        (scratch / COMPLETE_MARKER).write_text(key + "\n")
        if final.exists() and not (final / COMPLETE_MARKER).is_file():
            shutil.rmtree(final, ignore_errors=True)  # a leftover of an older, broken layout
        try:
            os.rename(scratch, final)
        except OSError:
            if not (final / COMPLETE_MARKER).is_file():
                raise
            log.info("another process cached %s first; using its copy", key)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return final
