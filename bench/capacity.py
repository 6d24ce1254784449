"""A capacity model of the mesh from a concurrency sweep's measurements (bench/sweep.py's
sweep.json): each component's CPU seconds per query as a function of how many queries share
its batches, checked against the sweep's own throughput on this machine, then turned into the
replicas a deployment needs for a target load (docs/scaling.md).

    python -m bench.capacity [--sweep bench/reports/sweep/sweep.json] [--out bench/reports/capacity]

The model (operational laws, no simulation):

- demand: a component's CPU seconds per answered query at concurrency c is
  ``fixed + amortized / min(c, batch)`` — what every query costs alone (the prompt's prefill,
  a search, the RPCs) plus what a batch shares (a decode step, an embedding batch), fitted by
  least squares over the sweep's levels from each component's ``process_cpu_seconds_total``;
- throughput of c callers on ``cores`` cores: ``c / max(R1, c * D(c) / cores, c * D_i(c) / cap_i)``
  — the callers' pace when nothing queues (R1, the c=1 latency), the CPU's capacity, or the
  busiest part's own (a generator runs llama.cpp's threads, an orchestrator one event loop),
  whichever is lowest (the asymptotic bounds of a closed system);
- replicas for a load: ``ceil(load * D_i / (cores_i * utilization_i))`` per component, with the
  pod's CPU request and its HPA's utilization target from k8s/base.

The last line printed is one JSON object: the largest prediction error on this machine and the
replicas of each plan.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.capacity_plan import PLANS, Pod, plan_table, plans
from ragmesh.vocabulary.names import COMPONENTS

#: The generator's default max batch (RAGMESH_GENERATOR_MAX_BATCH_SIZE): rows share a decode step up to it.
GENERATOR_BATCH = 8
#: Parts of the sweep's CPU accounting that are not a component of a deployment.
NOT_DEPLOYED = ("client", "generator_batch")


@dataclass(frozen=True)
class Demand:
    """CPU seconds per query: ``fixed + amortized / sharing`` (sharing = queries per batch)."""

    fixed: float
    amortized: float

    def at(self, sharing: float) -> float:
        """The demand when ``sharing`` queries share each batch."""
        return self.fixed + self.amortized / max(1.0, sharing)


def fit_demand(sharing: list[float], seconds: list[float]) -> Demand:
    """Least-squares ``fixed`` and ``amortized`` (both kept >= 0) over the measured levels."""
    x = np.array([1.0 / max(1.0, s) for s in sharing])
    y = np.array(seconds)
    if len(set(x.tolist())) < 2:
        return Demand(float(y.mean()), 0.0)
    amortized, fixed = np.polyfit(x, y, 1)
    if amortized < 0:  # more sharing never costs more: a flat demand then
        return Demand(float(y.mean()), 0.0)
    if fixed < 0:
        return Demand(0.0, float((x * y).sum() / (x * x).sum()))
    return Demand(float(fixed), float(amortized))


def fitted_demands(levels: list[dict[str, Any]]) -> dict[str, Demand]:
    """Each part's demand model from the sweep's per-level CPU per query."""
    parts = sorted({name for level in levels for name in level} - {"concurrency", *NOT_DEPLOYED[1:]})
    sharing = [float(min(level["concurrency"], GENERATOR_BATCH)) for level in levels]
    return {part: fit_demand(sharing, [float(level.get(part, 0.0)) for level in levels]) for part in parts}


def predicted_qps(
    concurrency: int, r1_seconds: float, demands: dict[str, Demand], cores: int, caps: dict[str, float] | None = None
) -> float:
    """Queries/s of ``concurrency`` closed-loop callers: every part shares the same ``cores``,
    and a part in ``caps`` can use no more than its cores there (the bottleneck law per part)."""
    sharing = min(concurrency, GENERATOR_BATCH)
    total = sum(d.at(sharing) for d in demands.values())
    busiest = max((demands[part].at(sharing) / cap for part, cap in (caps or {}).items() if part in demands),
                  default=0.0)  # fmt: skip
    return concurrency / max(r1_seconds, concurrency * total / cores, concurrency * busiest)


def core_caps(sweep: dict[str, Any]) -> dict[str, float]:
    """The cores each capped part of the swept mesh could use: llama.cpp's threads for the
    generator (half the cores by default), one for the orchestrator (one asyncio loop, one GIL)."""
    cores = int(sweep["machine"]["cores"])
    threads = int(sweep.get("settings", {}).get("generator_threads", 0)) or max(cores // 2, 1)
    return {"generator": float(min(threads, cores)), "orchestrator": 1.0}


def check(sweep: dict[str, Any]) -> list[dict[str, float]]:
    """Predicted against measured queries/s at every level of the sweep."""
    demands = fitted_demands(sweep["cpu_per_query"]["mesh"])
    levels = {row["concurrency"]: row for row in sweep["mesh"]}
    r1 = 1.0 / levels[1]["qps"]
    cores = int(sweep["machine"]["cores"])
    caps = core_caps(sweep)
    rows = []
    for concurrency, row in sorted(levels.items()):
        predicted = predicted_qps(concurrency, r1, demands, cores, caps)
        error = predicted / row["qps"] - 1 if row["qps"] else float("inf")
        rows.append({"concurrency": concurrency, "measured_qps": row["qps"],
                     "predicted_qps": round(predicted, 3), "error": round(error, 3)})  # fmt: skip
    return rows


def _markdown(checked: list[dict[str, float]], demands: dict[str, Demand], planned: dict[str, Any]) -> list[str]:
    lines = ["# Capacity model", "", "## Demand per query (CPU seconds = fixed + amortized / sharing)", ""]
    lines += ["| part | fixed | amortized |", "|---|---|---|"]
    lines += [f"| {name} | {d.fixed:.4f} | {d.amortized:.4f} |" for name, d in demands.items()]
    lines += ["", "## This machine: predicted against measured", "", "| c | measured qps | predicted qps | error |"]
    lines += ["|---|---|---|---|"]
    for r in checked:
        lines.append(f"| {r['concurrency']} | {r['measured_qps']} | {r['predicted_qps']} | {r['error']:+.1%} |")
    for name, table in planned.items():
        lines += ["", f"## Plan: {name}", "", *plan_table(table)]
    return lines


def main() -> None:
    """Fit, check, plan; write capacity.json and report.md under --out."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep", type=Path, default=Path("bench/reports/sweep/sweep.json"))
    parser.add_argument("--out", type=Path, default=Path("bench/reports/capacity"))
    args = parser.parse_args()
    sweep = json.loads(args.sweep.read_text())
    demands = fitted_demands(sweep["cpu_per_query"]["mesh"])
    checked = check(sweep)
    tokens = int(sweep.get("settings", {}).get("answer_tokens", 32))
    planned = plans(demands, GENERATOR_BATCH, tokens, [Pod.from_k8s(c) for c in COMPONENTS])
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"demands": {k: asdict(v) for k, v in demands.items()}, "check": checked, "plans": planned}
    (args.out / "capacity.json").write_text(json.dumps(report, indent=2))
    (args.out / "report.md").write_text("\n".join(_markdown(checked, demands, planned)) + "\n")
    print("\n".join(_markdown(checked, demands, planned)))
    worst = max(abs(r["error"]) for r in checked)
    replicas = {name: {row["component"]: row["replicas"] for row in table} for name, table in planned.items()}
    print(json.dumps({"benchmark": "capacity", "max_abs_error": worst, "plans": len(PLANS), "replicas": replicas}))


if __name__ == "__main__":
    main()
