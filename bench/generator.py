"""Generator benchmark: the service's streams against in-process ``model.generate``.

One run, one machine, the real default model, one prompt, greedy decoding of 128 new
tokens. Baselines: ``model.generate`` in this process at batch 1 and batch 8. Measured:
the service as a real process on loopback with 1 stream and with 8 concurrent streams
(tokens per second in total, time to first token p50 as seen by the client). Rounds
alternate baselines and service so that drifting load on a shared machine hits both
alike; each figure is the best of its rounds (TTFT from the same round), and every
round's rate is in the JSON. ``--compare-cb`` also times transformers'
continuous-batching manager (``generate_batch``) at batch 1 and 8.

``--backend llamacpp`` measures the llama.cpp backend instead: the service at 1 stream
against llama.cpp in this process (``Llama.create_completion``, same GGUF, same threads)
at 1 stream, the service's total tokens/s at 4 streams against 1, and the transformers
service at 1 stream (see :mod:`bench.generator_llamacpp`).

Run: ``make bench-generator`` (or ``python -m bench.generator [--rounds N] [--compare-cb]
[--backend llamacpp]``). The last line printed is one JSON object with every figure and
the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench.generator_stream import NEW_TOKENS, PROMPT, service_rate
from ragmesh.mesh.processes import ServiceProcess
from services.generator.backends.loading import model_directory
from services.generator.config import GeneratorConfig

TARGET_SINGLE = 0.9
TARGET_BATCH = 0.85


def _load(directory: Path) -> tuple[Any, list[int]]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    model = AutoModelForCausalLM.from_pretrained(str(directory)).eval()
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPT}], add_generation_prompt=True, tokenize=False
    )
    return model, list(tokenizer(str(rendered), add_special_tokens=False)["input_ids"])


def generate_rate(model: Any, prompt: list[int], batch: int) -> float:
    """Tokens per second of in-process greedy ``model.generate`` at ``batch``."""
    ids = torch.tensor([prompt] * batch)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS, do_sample=False)
    elapsed = time.perf_counter() - start
    return (out.shape[1] - len(prompt)) * batch / elapsed


def cb_rate(model: Any, prompt: list[int], batch: int) -> float:
    """Tokens per second of transformers' continuous-batching manager (``generate_batch``)."""
    from transformers import GenerationConfig

    config = GenerationConfig(
        max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=model.generation_config.eos_token_id
    )
    start = time.perf_counter()
    results = model.generate_batch(inputs=[prompt] * batch, generation_config=config)
    elapsed = time.perf_counter() - start
    return sum(len(r.generated_tokens) for r in results.values()) / elapsed


def measure(rounds: int, compare_cb: bool) -> dict[str, Any]:
    """Every figure of the benchmark."""
    directory = model_directory(GeneratorConfig.from_env({}))  # converts the GGUF once if needed
    model, prompt = _load(directory)
    rates: dict[str, list[float]] = {"generate_b1": [], "generate_b8": [], "service_1": [], "service_8": []}
    ttfts: dict[str, list[list[float]]] = {"service_1": [], "service_8": []}
    with tempfile.TemporaryDirectory() as logs:
        service = ServiceProcess("generator", {}, Path(logs))
        try:
            service.wait_serving(timeout=600)
            generate_rate(model, prompt, 1)  # warm-up
            asyncio.run(service_rate(service.address, 1))
            for _ in range(rounds):
                for batch in (1, 8):
                    rates[f"generate_b{batch}"].append(generate_rate(model, prompt, batch))
                    rate, ttft = asyncio.run(service_rate(service.address, batch))
                    rates[f"service_{batch}"].append(rate)
                    ttfts[f"service_{batch}"].append(ttft)
        finally:
            service.terminate()
    figures: dict[str, Any] = {name: round(max(values), 2) for name, values in rates.items()}
    for name, per_round in ttfts.items():  # TTFT of the round whose throughput is reported
        best = rates[name].index(max(rates[name]))
        figures[f"{name}_ttft_p50_s"] = round(statistics.median(per_round[best]), 3)
    figures["ratio_1_stream"] = round(figures["service_1"] / figures["generate_b1"], 3)
    figures["ratio_8_streams"] = round(figures["service_8"] / figures["generate_b8"], 3)
    figures["rounds"] = rounds
    figures["all_rates"] = {name: [round(v, 2) for v in values] for name, values in rates.items()}
    if compare_cb:
        figures["cb_manager_b1"] = round(cb_rate(model, prompt, 1), 2)
        figures["cb_manager_b8"] = round(cb_rate(model, prompt, 8), 2)
    return figures


def main() -> None:
    """Run the benchmark and print its figures, then one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="measurement rounds (best of them is kept)")
    parser.add_argument("--compare-cb", action="store_true", help="also time transformers' CB manager")
    parser.add_argument("--backend", choices=("transformers", "llamacpp"), default="transformers")
    args = parser.parse_args()
    if args.backend == "llamacpp":
        from bench.generator_llamacpp import report

        report(args.rounds)
        return
    f = measure(args.rounds, args.compare_cb)
    print(f"greedy, {NEW_TOKENS} new tokens, prompt {PROMPT!r}, best of {args.rounds} rounds")
    print(f"in-process generate, batch 1:  {f['generate_b1']:7.2f} tokens/s")
    print(f"in-process generate, batch 8:  {f['generate_b8']:7.2f} tokens/s")
    print(f"service, 1 stream:             {f['service_1']:7.2f} tokens/s   TTFT p50 {f['service_1_ttft_p50_s']:.3f} s")
    print(f"service, 8 streams:            {f['service_8']:7.2f} tokens/s   TTFT p50 {f['service_8_ttft_p50_s']:.3f} s")
    print(f"1 stream / generate b1:        {f['ratio_1_stream']:.3f}  (target >= {TARGET_SINGLE})")
    print(f"8 streams / generate b8:       {f['ratio_8_streams']:.3f}  (target >= {TARGET_BATCH})")
    if "cb_manager_b1" in f:
        print(f"CB manager, batch 1 / 8:       {f['cb_manager_b1']:7.2f} / {f['cb_manager_b8']:.2f} tokens/s")
    print(json.dumps(f, separators=(",", ":")))


if __name__ == "__main__":
    main()
