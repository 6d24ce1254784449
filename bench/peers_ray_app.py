"""Ray Serve peer of the embedder, run by bench.peers in the peers venv (never in ragmesh's):

    .venv-peers/bin/python bench/peers_ray_app.py --model DIR --port PORT [--threads 2]

A local-only Ray (``ray.init(num_cpus=..., include_dashboard=False)``), one replica of a
deployment whose ``@serve.batch`` method embeds up to 32 texts with sentence-transformers,
served over HTTP on 127.0.0.1:PORT at ``POST /`` with the OpenAI-style body
``{"input": [text]}``. It prints READY once a request went through, serves until SIGTERM or
``--max-seconds``, then shuts Serve and Ray down. Stdlib + the peers venv only.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

import ray
from ray import serve
from starlette.requests import Request


class MiniLM:
    """The model on one replica; requests are grouped by ``@serve.batch``."""

    def __init__(self, model: str, threads: int, max_batch: int, wait_s: float) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self.model = SentenceTransformer(model, device="cpu")
        self.embed.set_max_batch_size(max_batch)
        self.embed.set_batch_wait_timeout_s(wait_s)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01)
    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One model call for every text that arrived together (the documented pattern)."""
        vectors = self.model.encode(texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True)
        return [list(map(float, v)) for v in vectors]

    async def __call__(self, request: Request) -> dict[str, Any]:
        body = await request.json()
        texts = body["input"]
        vectors = [await self.embed(text) for text in texts]
        return {"data": [{"index": i, "embedding": v} for i, v in enumerate(vectors)]}


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main() -> None:
    """Start Ray and Serve on loopback, serve until told to stop, shut both down."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--wait-ms", type=float, default=10.0)
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="stop by itself after this long")
    args = parser.parse_args()
    ray.init(
        num_cpus=args.threads,
        include_dashboard=False,
        object_store_memory=256 * 1024 * 1024,
        log_to_driver=False,
        configure_logging=False,
    )
    # After ray.init: Ray installs a SIGTERM handler that exits at once and leaves its agents
    # behind; ours unwinds through the finally below (serve.shutdown, ray.shutdown) instead.
    signal.signal(signal.SIGTERM, _stop)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": args.port})
        # max_ongoing_requests: Serve's default (5) would never let a batch of 32 form.
        deployment = serve.deployment(MiniLM, max_ongoing_requests=128, ray_actor_options={"num_cpus": args.threads})
        app = deployment.bind(args.model, args.threads, args.max_batch, args.wait_ms / 1000.0)
        serve.run(app, name="minilm", route_prefix="/", blocking=False)
        print("READY", flush=True)
        time.sleep(args.max_seconds)
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
