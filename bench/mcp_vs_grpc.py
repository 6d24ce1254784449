"""A streamed ``ask`` through MCP (the SDK's client, Streamable HTTP, through Envoy) against the
same question through gRPC ``QueryStream`` (through Envoy too), on one mesh in one run: p50
latency to the last token and to the first, and their ratio (the target: within 10%).

    python -m bench.mcp_vs_grpc --rounds 3 --tokens 32

The answer cache is off (L1 of no entries, no Redis), so every call generates. The questions
alternate transports, and the order flips every round. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.e2e import CORPUS, questions
from ragmesh.client import RagmeshClient, TokenEvent, files
from ragmesh.mesh.launcher import Mesh
from ragmesh.mesh.plan import MeshPlan
from ragmesh.mesh.processes import free_port
from tests.support.mcp_client import http_session

COLLECTION = "bench_mcp"


def _grpc(client: RagmeshClient, question: str, tokens: int) -> tuple[float, float]:
    started, first = time.perf_counter(), 0.0
    for event in client.query_stream(question, COLLECTION, max_new_tokens=tokens):
        if isinstance(event, TokenEvent) and not first:
            first = time.perf_counter() - started
    return time.perf_counter() - started, first


async def _measure(address: str, rounds: int, tokens: int) -> dict[str, float]:
    """Alternate the transports over the questions, ``rounds`` times."""
    asked = questions()
    grpc_total, grpc_first, mcp_total, mcp_first = [], [], [], []
    with RagmeshClient(address) as client:
        async with http_session(f"http://{address}/mcp") as session:
            first_token: list[float] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                if not first_token:
                    first_token.append(time.perf_counter())

            async def mcp(question: str) -> tuple[float, float]:
                first_token.clear()
                started = time.perf_counter()
                args = {"question": question, "collection": COLLECTION, "max_tokens": tokens}
                result = await session.call_tool("ask", args, progress_callback=on_progress)
                assert not result.is_error, result.content
                return time.perf_counter() - started, (first_token or [started])[0] - started

            for round_ in range(rounds):
                for question in asked:
                    order = ("grpc", "mcp") if round_ % 2 == 0 else ("mcp", "grpc")
                    for which in order:
                        if which == "grpc":
                            total, first = await asyncio.to_thread(_grpc, client, question, tokens)
                            grpc_total.append(total)
                            grpc_first.append(first)
                        else:
                            total, first = await mcp(question)
                            mcp_total.append(total)
                            mcp_first.append(first)
    median = statistics.median
    return {
        "calls_per_transport": len(grpc_total),
        "mcp_p50_ms": round(median(mcp_total) * 1000, 2),
        "grpc_p50_ms": round(median(grpc_total) * 1000, 2),
        "mcp_over_grpc": round(median(mcp_total) / median(grpc_total), 3),
        "mcp_ttft_p50_ms": round(median(mcp_first) * 1000, 2),
        "grpc_ttft_p50_ms": round(median(grpc_first) * 1000, 2),
    }


def main() -> None:
    """Start a mesh (cache off), index the sample corpus, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the sample questions")
    parser.add_argument("--tokens", type=int, default=32, help="max new tokens per answer")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-mcp-"))
    os.environ["RAGMESH_ORCHESTRATOR_CACHE_L1_ENTRIES"] = "0"  # the replicas inherit it: every call generates
    plan = MeshPlan(envoy_port=free_port(), envoy_admin_port=free_port(), default_ports=False,
                    retriever_uri=str(workdir / "mesh.db"), log_dir=workdir / "logs")  # fmt: skip
    mesh = Mesh(plan)
    try:
        mesh.start(report=lambda line: None)
        with RagmeshClient(mesh.address) as client:
            client.ingest(files.load([CORPUS]).documents, COLLECTION)
        result = asyncio.run(_measure(mesh.address, args.rounds, args.tokens))
    finally:
        mesh.stop()
    for name, figure in result.items():
        print(f"{name:>22}: {figure}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
