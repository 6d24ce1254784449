"""The peers' own stack in-process, run by bench.peers in the peers venv:

    .venv-peers/bin/python bench/peers_stack.py --model DIR --batch 32 --threads 2 < texts.json

sentence-transformers (the library infinity-emb and the Ray Serve deployment run, on the
transformers those pin) embedding the texts read from stdin (a JSON list) in batches, in
this process. It tells whether a peer's ratio comes from its serving or from its stack.
Prints one JSON object: {"texts_per_s": ..., "cpu_s": ...} (CPU of the timed pass). Stdlib + the peers venv only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> None:
    """Load the model, warm up, time one pass over the texts, print the figure."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    texts: list[str] = json.load(sys.stdin)
    model = SentenceTransformer(args.model, device="cpu")
    model.encode(texts[: args.batch], batch_size=args.batch, normalize_embeddings=True)  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    for first in range(0, len(texts), args.batch):
        model.encode(texts[first : first + args.batch], batch_size=args.batch, normalize_embeddings=True)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({"texts_per_s": len(texts) / seconds, "cpu_s": cpu}))


if __name__ == "__main__":
    main()
