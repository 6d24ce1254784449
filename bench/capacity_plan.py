"""The replicas a deployment needs for a target load, from the capacity model's demands
(bench/capacity.py) and the pods of k8s/base: each pod's CPU request and its HPA's CPU
utilization target, on CPU or with a GPU generator behind the remote backend."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from ragmesh.mesh.processes import ROOT


class DemandModel(Protocol):
    """CPU seconds per query when ``sharing`` queries share a batch."""

    @property
    def fixed(self) -> float: ...

    @property
    def amortized(self) -> float: ...

    def at(self, sharing: float) -> float: ...


#: CPU seconds an answer-cache hit costs (no component behind the orchestrator is called):
#: bench.e2e measures an L1 hit through Envoy at ~1.8 ms end to end on this machine, spent
#: mostly in the orchestrator's event loop and Envoy; counted whole as CPU, so on the high side.
HIT_CPU_SECONDS = {"orchestrator": 0.0015, "envoy": 0.0005}

#: Published GPU throughput the GPU plan rests on: vLLM 0.23.0 serving Llama-3.1-8B-Instruct
#: (BF16) on one NVIDIA A100 40GB, 1,024 prompt and 128 answer tokens per request: ~75 answer
#: tokens/s at one request, 6.6x that at 8 concurrent requests, the knee where its author runs
#: production (https://johnmusgrave.com/p/vllm-throughput-latency-sweep-on).
GPU_ANSWER_TOKENS_PER_S = 75 * 6.6
GPU_SOURCE = "vLLM 0.23.0, Llama-3.1-8B-Instruct BF16, 1x A100 40GB, 1024 in / 128 out, C=8 (johnmusgrave.com)"


@dataclass(frozen=True)
class Scenario:
    """A target load: queries/s, the share answered from the cache, answer length."""

    name: str
    qps: float
    hit_rate: float
    answer_tokens: int
    gpu: bool = False


#: The loads docs/scaling.md plans for: 10, 100 and 1,000 queries/s, 30 % answered from the
#: cache, 64-token answers, a CPU or a GPU generator.
PLANS = tuple(
    Scenario(f"{qps} qps, 30% cache hits, 64-token answers, {'GPU' if gpu else 'CPU'} generator", qps, 0.3, 64, gpu)
    for qps in (10, 100, 1000)
    for gpu in (False, True)
)


@dataclass(frozen=True)
class Pod:
    """A component's pod as k8s/base declares it: CPU request, HPA CPU target, min replicas."""

    component: str
    cpu_request: float
    utilization: float
    min_replicas: int
    #: The HPA's metrics, as "name target" strings, for the plan's table.
    triggers: tuple[str, ...]

    @classmethod
    def from_k8s(cls, component: str) -> Pod:
        """Read ``k8s/base/<component>.yaml``."""
        documents = list(yaml.safe_load_all((ROOT / "k8s" / "base" / f"{component}.yaml").read_text()))
        deployment = next(d for d in documents if d and d.get("kind") == "Deployment")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        request = _cpu(container["resources"]["requests"]["cpu"])
        hpa = next((d for d in documents if d and d.get("kind") == "HorizontalPodAutoscaler"), None)
        if hpa is None:
            return cls(component, request, 0.7, 1, ("none (fixed replicas)",))
        metrics = hpa["spec"]["metrics"]
        utilization = next(
            (m["resource"]["target"]["averageUtilization"] / 100 for m in metrics if m["type"] == "Resource"), 0.7
        )
        triggers = tuple(_trigger(m) for m in metrics)
        return cls(component, request, utilization, int(hpa["spec"]["minReplicas"]), triggers)


def _cpu(quantity: str | int | float) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _trigger(metric: Mapping[str, Any]) -> str:
    if metric["type"] == "Resource":
        return f"cpu {metric['resource']['target']['averageUtilization']}%"
    body = metric.get("pods") or metric.get("external") or {}
    target = body.get("target", {})
    return f"{body.get('metric', {}).get('name', '?')} {target.get('averageValue', target.get('value', '?'))}"


def component_demand(name: str, model: DemandModel, batch: int, answer_tokens: int, sweep_tokens: int) -> float:
    """CPU seconds per answered (not cached) query at full batches; the generator's shared
    (decode) part scaled from the sweep's answer length to ``answer_tokens``."""
    if name != "generator":
        return model.at(batch)
    return model.fixed + model.amortized / batch * answer_tokens / sweep_tokens


def plan(
    scenario: Scenario, demands: Mapping[str, DemandModel], batch: int, sweep_tokens: int, pods: Iterable[Pod]
) -> list[dict[str, Any]]:
    """One row per component: CPU per query, CPU cores needed, replicas, what scales it."""
    misses = scenario.qps * (1 - scenario.hit_rate)
    hits = scenario.qps * scenario.hit_rate
    rows: list[dict[str, Any]] = []
    for pod in pods:
        if pod.component == "generator" and scenario.gpu:
            per_replica = GPU_ANSWER_TOKENS_PER_S / scenario.answer_tokens
            replicas = max(pod.min_replicas, math.ceil(misses / per_replica))
            scales_on = f"{per_replica:.1f} answers/s per GPU"
            rows.append({"component": "generator (GPU, remote backend)", "cpu_s_per_query": None,
                         "cores": None, "replicas": replicas, "scales_on": scales_on})  # fmt: skip
            continue
        per_query = component_demand(pod.component, demands[pod.component], batch, scenario.answer_tokens, sweep_tokens)
        cores = misses * per_query + hits * HIT_CPU_SECONDS.get(pod.component, 0.0)
        replicas = max(pod.min_replicas, math.ceil(cores / (pod.cpu_request * pod.utilization)))
        rows.append({"component": pod.component, "cpu_s_per_query": round(per_query, 4), "cores": round(cores, 2),
                     "replicas": replicas, "scales_on": ", ".join(pod.triggers)})  # fmt: skip
    return rows


def plans(
    demands: Mapping[str, DemandModel], batch: int, sweep_tokens: int, pods: list[Pod]
) -> dict[str, list[dict[str, Any]]]:
    """Every scenario of :data:`PLANS` (Envoy planned like a component, from its own pod)."""
    every = [*pods, Pod.from_k8s("envoy")] if "envoy" in demands else pods
    return {s.name: plan(s, demands, batch, sweep_tokens, every) for s in PLANS}


def plan_table(rows: list[dict[str, Any]]) -> list[str]:
    """A plan as a markdown table."""
    lines = ["| component | CPU s / answered query | cores | replicas | HPA triggers |", "|---|---|---|---|---|"]
    for row in rows:
        per_query = "-" if row["cpu_s_per_query"] is None else row["cpu_s_per_query"]
        cores = "-" if row["cores"] is None else row["cores"]
        lines.append(f"| {row['component']} | {per_query} | {cores} | {row['replicas']} | {row['scales_on']} |")
    return lines
