"""``python -m bench.generator --backend llamacpp``: the llama.cpp backend's figures.

One run, one machine, the default GGUF, the prompt and 128 greedy tokens of
:mod:`bench.generator`. Baseline: llama.cpp in this process through llama-cpp-python's
own ``Llama.create_chat_completion`` (the service's thread count, the GGUF's chat template),
one stream.
Measured: the generator service with ``RAGMESH_GENERATOR_BACKEND=llamacpp`` as a real
process on loopback at 1 and 4 concurrent streams, and the transformers service at 1
stream. Rounds alternate baseline and services; each figure is the best of its rounds.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.generator_stream import NEW_TOKENS, PROMPT, llamacpp_threads, service_rate
from ragmesh.mesh.processes import ServiceProcess
from services.generator.config import default_model_path

TARGET_SINGLE = 0.9
STREAMS = 4


def inprocess_rate(llm: Any) -> float:
    """Tokens per second of one greedy chat completion in this process."""
    start = time.perf_counter()
    out = llm.create_chat_completion(
        messages=[{"role": "user", "content": PROMPT}], max_tokens=NEW_TOKENS, temperature=0.0, repeat_penalty=1.0
    )
    return float(out["usage"]["completion_tokens"]) / (time.perf_counter() - start)


def measure(rounds: int) -> dict[str, Any]:
    """Every figure of the llama.cpp benchmark."""
    from llama_cpp import Llama

    threads = llamacpp_threads()
    llm = Llama(default_model_path("model"), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
    rates: dict[str, list[float]] = {"inprocess_1": [], "service_1": [], f"service_{STREAMS}": [], "transformers_1": []}
    with tempfile.TemporaryDirectory() as logs:
        env = {"RAGMESH_GENERATOR_BACKEND": "llamacpp", "RAGMESH_GENERATOR_LLAMACPP_THREADS": str(threads)}
        llama = ServiceProcess("generator", env, Path(logs))
        torch = ServiceProcess("generator", {"RAGMESH_GENERATOR_BACKEND": "transformers"}, Path(logs))
        try:
            llama.wait_serving(timeout=600)
            torch.wait_serving(timeout=600)
            inprocess_rate(llm)  # warm-up of both sides
            asyncio.run(service_rate(llama.address, 1))
            for _ in range(rounds):
                rates["inprocess_1"].append(inprocess_rate(llm))
                rates["service_1"].append(asyncio.run(service_rate(llama.address, 1))[0])
                rates[f"service_{STREAMS}"].append(asyncio.run(service_rate(llama.address, STREAMS))[0])
                rates["transformers_1"].append(asyncio.run(service_rate(torch.address, 1))[0])
        finally:
            llama.terminate()
            torch.terminate()
    f: dict[str, Any] = {name: round(max(values), 2) for name, values in rates.items()}
    f["ratio_1_stream"] = round(f["service_1"] / f["inprocess_1"], 3)
    f["scaling_4_streams"] = round(f[f"service_{STREAMS}"] / f["service_1"], 3)
    f["vs_transformers_1_stream"] = round(f["service_1"] / f["transformers_1"], 3)
    f["rounds"] = rounds
    f["threads"] = threads
    f["all_rates"] = {name: [round(v, 2) for v in values] for name, values in rates.items()}
    return f


def report(rounds: int) -> None:
    """Run the benchmark and print its figures, then one JSON line."""
    f = measure(rounds)
    print(f"llama.cpp backend, greedy, {NEW_TOKENS} new tokens, prompt {PROMPT!r}, best of {rounds} rounds")
    print(f"llama.cpp in-process, 1 stream:   {f['inprocess_1']:7.2f} tokens/s")
    print(f"service (llamacpp), 1 stream:     {f['service_1']:7.2f} tokens/s")
    print(f"service (llamacpp), {STREAMS} streams:    {f[f'service_{STREAMS}']:7.2f} tokens/s in total")
    print(f"service (transformers), 1 stream: {f['transformers_1']:7.2f} tokens/s")
    print(f"1 stream / in-process:            {f['ratio_1_stream']:.3f}  (target >= {TARGET_SINGLE})")
    print(f"{STREAMS} streams / 1 stream:             {f['scaling_4_streams']:.3f}  (target > 1)")
    print(f"llamacpp / transformers service:  {f['vs_transformers_1_stream']:.3f}")
    print(json.dumps(f, separators=(",", ":")))
