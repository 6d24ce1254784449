"""A sync of 1,000 unchanged files against the first ingestion of them.

Writes N Markdown files (1,000 by default) into a folder, declares it as a folder source, and
runs syncs through the core (the composition root's, over the embedder and retriever engines
in this process and a private Redis — the job records, the sync state and the task path of
the worker, without the Celery hop): the first sync (every file read, parsed, embedded,
stored), a sync with nothing changed (listed, every change token equal: nothing read), and a
sync after every file was touched (read again, then skipped by content hash). The last line is
one JSON object.

    python -m bench.sources_sync [--files 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from bench.local_core import LocalCore
from ragmesh.vocabulary import JobState
from services.orchestrator.core.sources.model import SourceKind, SourceSpec

TEXT = (
    "envoy balances requests across orchestrator replicas while the retriever keeps chunks in milvus "
    "and the embedder turns every chunk into a vector the generator never sees"
)
WORDS = TEXT.split()


def write_files(folder: Path, count: int) -> None:
    """``count`` Markdown files of about 120 words, each different."""
    folder.mkdir(parents=True)
    for number in range(count):
        words = [WORDS[(number * 7 + i * 3) % len(WORDS)] for i in range(120)]
        (folder / f"note-{number:04d}.md").write_text(f"# Note {number}\n\n{' '.join(words)} ({number}).\n")


async def timed_sync(core: LocalCore, name: str) -> tuple[float, dict[str, int]]:
    manager = core.core.source_manager()
    began = time.perf_counter()
    state = await manager.run_job(await manager.submit(name, ""), "bench")
    seconds = time.perf_counter() - began
    status = await manager.status(name)
    assert state is JobState.SUCCEEDED, status.error
    counts = {"added": status.added, "updated": status.updated, "unchanged": status.unchanged, "failed": status.failed}
    return seconds, counts


async def run(files: int, workdir: Path) -> dict[str, object]:
    folder = workdir / "notes"
    write_files(folder, files)
    local = LocalCore(workdir)
    core = await local.start()
    try:
        spec = SourceSpec("notes", SourceKind.FOLDER, "bench_notes", path=str(folder))
        core.parts.sources.specs = {spec.name: spec}
        first, first_counts = await timed_sync(local, spec.name)
        unchanged, unchanged_counts = await timed_sync(local, spec.name)
        stamp = time.time() + 60
        for path in folder.iterdir():
            os.utime(path, (stamp, stamp))
        touched, touched_counts = await timed_sync(local, spec.name)
    finally:
        await local.close()
    return {
        "files": files,
        "first_sync_seconds": round(first, 2),
        "first_sync": first_counts,
        "unchanged_sync_seconds": round(unchanged, 3),
        "unchanged_sync": unchanged_counts,
        "unchanged_over_first": round(unchanged / first, 4),
        "touched_sync_seconds": round(touched, 2),
        "touched_sync": touched_counts,
        "touched_over_first": round(touched / first, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ragmesh-bench-sync-") as workdir:
        figures = asyncio.run(run(args.files, Path(workdir)))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
