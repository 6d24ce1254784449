"""The generator's engines side by side on a RAG prompt, in this process: the measurement
that chose the default backend (docs/performance.md#the-default-engine).

    python -m bench.engines [--rounds 3] [--prompt-tokens 700] [--tokens 32]

For each backend (llama.cpp and transformers, each with the service's default settings; any
``RAGMESH_GENERATOR_*`` variable in the environment applies, e.g. LLAMACPP_BATCH_THREADS), one
prompt of about ``--prompt-tokens`` tokens — the system instructions, numbered sources from
the sample corpus and a question, as the orchestrator builds it — is prefilled, then
``--tokens`` greedy tokens are decoded, alone. Every round of every backend runs in a process
of its own (in one process, OpenBLAS's threads and torch's slowed each other's decode 7x), the
rounds alternating the backends; wall time and the process's CPU time (every thread) are taken
around each phase, and each figure is the median of the rounds. On a shared machine the CPU
seconds move less than the wall time. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.machine import machine_facts
from ragmesh.client import files
from ragmesh.mesh.processes import ROOT
from services.generator.backends.choice import load_generator
from services.generator.config import GeneratorConfig
from services.generator.decoding.lm import CausalLMBackend, ChatTurn, Sampling
from services.orchestrator.core.query.prompt import build_turns

QUESTION = "How does the orchestrator keep answers fast when the same question comes back?"
BACKENDS = ("llamacpp", "transformers")


def rag_turns(lm: CausalLMBackend, prompt_tokens: int) -> list[ChatTurn]:
    """The orchestrator's prompt over sample-corpus chunks, grown to about ``prompt_tokens``."""
    chunks = [d.text[:800] for d in files.load([ROOT / "corpus" / "docs"]).documents]
    texts: list[str] = []
    for chunk in chunks:
        turns = [ChatTurn(t.role, t.content) for t in build_turns(QUESTION, [*texts, chunk])]
        if len(lm.render_chat(turns)) > prompt_tokens:
            break
        texts.append(chunk)
    return [ChatTurn(t.role, t.content) for t in build_turns(QUESTION, texts)]


def _timed(action: Callable[[], Any]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(lm: CausalLMBackend, prompt: list[int], tokens: int) -> dict[str, float]:
    """One prefill and ``tokens`` decode steps, alone: seconds of wall and CPU each."""
    lm.reset()  # nothing cached from the round before (llama.cpp's prompt head included)
    prefill_wall, prefill_cpu = _timed(lambda: lm.join([prompt], [Sampling()]))
    decode_wall, decode_cpu = _timed(lambda: [lm.step() for _ in range(tokens)])
    lm.leave([0])
    return {"prefill_wall": prefill_wall, "prefill_cpu": prefill_cpu, "decode_wall": decode_wall,
            "decode_cpu": decode_cpu}  # fmt: skip


def one_round(backend: str, prompt_tokens: int, tokens: int) -> dict[str, float]:
    """Load ``backend`` in this process and measure it once (after one unmeasured warm-up)."""
    environ = {k: v for k, v in os.environ.items() if k.startswith("RAGMESH_GENERATOR_")}
    lm = load_generator(GeneratorConfig.from_env(environ | {"RAGMESH_GENERATOR_BACKEND": backend})).backend
    prompt = lm.render_chat(rag_turns(lm, prompt_tokens))
    measure(lm, prompt, 4)  # first-call costs (allocations at this size, kernel choice) out of the figures
    return {**measure(lm, prompt, tokens), "prompt_tokens": len(prompt)}


def _in_child(backend: str, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.engines", "--child", backend, "--prompt-tokens", str(args.prompt_tokens),
               "--tokens", str(args.tokens)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=True)
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _summary(samples: list[dict[str, float]], tokens: int) -> dict[str, float]:
    median = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
    prompt = int(median["prompt_tokens"])
    return {
        "prompt_tokens": prompt,
        "prefill_tokens_per_s": round(prompt / median["prefill_wall"], 1),
        "prefill_tokens_per_cpu_s": round(prompt / median["prefill_cpu"], 1),
        "decode_ms_per_token": round(1000 * median["decode_wall"] / tokens, 2),
        "decode_cpu_ms_per_token": round(1000 * median["decode_cpu"] / tokens, 2),
        "answer_s": round(median["prefill_wall"] + median["decode_wall"], 3),
    }


def main() -> None:
    """Load both engines, alternate the rounds, print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompt-tokens", type=int, default=700)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--child", choices=BACKENDS, help=argparse.SUPPRESS)  # one round, in its own process
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_round(args.child, args.prompt_tokens, args.tokens)))
        return
    machine = machine_facts()
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in BACKENDS}
    for round_number in range(args.rounds):
        for name in BACKENDS if round_number % 2 == 0 else reversed(BACKENDS):
            samples[name].append(_in_child(name, args))
    results = {name: _summary(samples[name], args.tokens) for name in BACKENDS}
    for name, figures in results.items():
        print(name, figures)
    speedup = results["transformers"]["answer_s"] / results["llamacpp"]["answer_s"]
    print(json.dumps({"benchmark": "engines", **results, "llamacpp_speedup": round(speedup, 3),
                      "rounds": args.rounds, "load_average": machine.get("load_average_1_5_15")}))  # fmt: skip


if __name__ == "__main__":
    main()
