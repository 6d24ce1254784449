"""A cache of converted models (a GGUF de-quantised for transformers, an ONNX export),
shared by the generator and the embedder.

An entry is built in a temporary directory and renamed into place, so two processes
starting at once never see half a model: the first rename wins and the other drops its copy.
Entries are keyed by what the source files hold (:func:`file_fingerprint`), not by their
modification times: a new virtual environment installs the same model package with new
mtimes, and must not pay for a conversion it already made.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)
#: Written last into a cache entry; an entry without it is ignored.
COMPLETE_MARKER = "ragmesh-complete"
#: How much of each end of a file its fingerprint reads.
FINGERPRINT_SPAN = 8 << 20


def file_fingerprint(path: Path) -> str:
    """Size and a BLAKE2 digest of the first and last 8 MiB of ``path`` (all of a smaller file).

    Constant time whatever the model's size (a whole 4 GB GGUF would cost seconds per
    start), and it changes with any re-quantisation or fine-tune: those rewrite the header,
    where GGUF and safetensors keep the tensor layout, and the first tensors' data.
    """
    size = path.stat().st_size
    digest = hashlib.blake2b(str(size).encode(), digest_size=8)
    with path.open("rb") as source:
        digest.update(source.read(FINGERPRINT_SPAN))
        if size > 2 * FINGERPRINT_SPAN:
            source.seek(size - FINGERPRINT_SPAN)
        digest.update(source.read(FINGERPRINT_SPAN))
    return f"{size}-{digest.hexdigest()}"


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
