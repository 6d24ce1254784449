"""Where the mesh spends its CPU under load: py-spy samples every component process while
``--concurrency`` callers stream queries through Envoy, and the report lists, per
component, the functions with the most samples of their own (self) and in total.

    make bench-profile        # or: python -m bench.profile_mesh --concurrency 4 --seconds 30

py-spy (the ``dev`` extra) attaches to the running processes from outside; it samples
without pausing them (``--nonblocking``), so the load it measures is the load it adds to.
Writes ``<component>-<pid>.txt`` (collapsed stacks, for flame graph tools) and report.md
under --out; the last line is one JSON object with each component's top self-time entry.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import subprocess
import tempfile
import threading
from collections import Counter
from pathlib import Path

from bench.e2e import questions
from bench.machine import machine_facts, markdown
from bench.sweep import start_mesh
from bench.sweep_load import mesh_streamer, run_level
from ragmesh.client import AsyncRagmeshClient, RagmeshClient, files
from ragmesh.mesh.launcher import Mesh
from ragmesh.mesh.processes import ROOT

COLLECTION = "profile_docs"
TOP = 15


def _frame_name(frame: str) -> str:
    """``function (path/file.py:123)`` -> ``function (file.py)``: lines merged per function."""
    name, _, where = frame.partition(" (")
    return f"{name} ({Path(where.split(':')[0]).name})" if where else name


def summarise(collapsed: str) -> tuple[Counter[str], Counter[str], int]:
    """Self and inclusive sample counts per function of py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for name in set(frames):
            total[name] += count
    return own, total, samples


def _table(counter: Counter[str], samples: int) -> list[str]:
    rows = ["| share | function |", "|---:|---|"]
    rows += [f"| {count / samples:.1%} | `{name}` |" for name, count in counter.most_common(TOP)]
    return rows


def _record(pid: int, seconds: int, output: Path) -> subprocess.Popen[bytes]:
    py_spy = shutil.which("py-spy") or str(Path(ROOT / ".venv" / "bin" / "py-spy"))
    command = [py_spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "100"]
    command += ["--format", "raw", "--nonblocking", "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def _load(address: str, concurrency: int, tokens: int, stop: threading.Event) -> None:
    """Stream queries at ``concurrency`` until ``stop`` is set (runs in its own thread)."""

    async def run() -> None:
        async with AsyncRagmeshClient(address, timeout=600) as client:
            stream = mesh_streamer(client, COLLECTION, tokens)
            while not stop.is_set():
                await run_level(stream, questions(), concurrency, 1)

    asyncio.run(run())


def _hits(address: str, concurrency: int, tokens: int, stop: threading.Event) -> None:
    """One question asked over and over (after the first, every answer is an L1 hit)."""
    with RagmeshClient(address, timeout=600) as client:
        while not stop.is_set():
            client.query(questions()[0], COLLECTION, max_new_tokens=tokens)


def profile(mesh: Mesh, args: argparse.Namespace) -> dict[str, tuple[Counter[str], Counter[str], int]]:
    """Sample every replica for ``args.seconds`` under load; counts per component."""
    stop = threading.Event()
    # Cache hits go straight to the orchestrator: the cost of a hit is all the orchestrator's.
    orchestrator = next(r.address for r in mesh.replicas if r.component == "orchestrator")
    target, address = (_hits, orchestrator) if args.load == "hits" else (_load, mesh.address)
    if args.load == "hits":  # generate the answer once, before sampling starts
        with RagmeshClient(orchestrator, timeout=600) as client:
            client.query(questions()[0], COLLECTION, max_new_tokens=args.tokens)
    loader = threading.Thread(target=target, args=(address, args.concurrency, args.tokens, stop), daemon=True)
    loader.start()
    try:
        recorders = {
            (r.component, r.process.process.pid): _record(
                r.process.process.pid, args.seconds, args.out / f"{r.component}-{r.process.process.pid}.txt"
            )
            for r in mesh.replicas
        }
        for recorder in recorders.values():
            recorder.wait(timeout=args.seconds + 120)
    finally:
        stop.set()
        loader.join(timeout=600)
    results: dict[str, tuple[Counter[str], Counter[str], int]] = {}
    for component, pid in recorders:
        path = args.out / f"{component}-{pid}.txt"
        if path.exists():
            results[component] = summarise(path.read_text())
    return results


def write_report(
    out: Path, results: dict[str, tuple[Counter[str], Counter[str], int]], args: argparse.Namespace
) -> None:
    lines = ["# Where the mesh spends its CPU", "", *markdown(machine_facts())]
    load = "repeating one question (L1 hits)" if args.load == "hits" else f"streaming {args.tokens}-token answers"
    lines += [f"Load: {args.concurrency} callers {load} (hits: straight to the orchestrator), "
              f"{args.seconds} s of py-spy samples at 100 Hz per process (active samples only).", ""]  # fmt: skip
    for component, (own, total, samples) in sorted(results.items()):
        lines += [f"## {component} ({samples} samples)", "", "Self:", "", *_table(own, samples), ""]
        lines += ["Inclusive:", "", *_table(total, samples), ""]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench/reports/profile"))
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument(
        "--load", choices=("stream", "hits"), default="stream", help="streamed answers or L1 cache hits"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    with contextlib.ExitStack() as cleanup:
        mesh = start_mesh(cleanup, workdir)
        with RagmeshClient(mesh.address) as client:
            client.ingest(files.load([ROOT / "corpus" / "docs"]).documents, COLLECTION)
        results = profile(mesh, args)
    write_report(args.out, results, args)
    top = {c: own.most_common(1)[0][0] if own else "" for c, (own, _, _) in results.items()}
    print(json.dumps({"benchmark": "profile", "samples": {c: r[2] for c, r in results.items()}, "top_self": top}))


if __name__ == "__main__":
    main()
