"""The CPU each part of a running mesh spends, read around one sweep level: every component's
own ``process_cpu_seconds_total`` (its Prometheus endpoint, as an operator would read it),
Envoy's and the benchmark client's from /proc (psutil). Divided by the queries answered, these
are the service demands of the capacity model (bench/capacity.py)."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass

import psutil

from ragmesh.mesh.launcher import Mesh
from tests.support.metrics import scrape, value

#: What is metered beside the components: the proxy, and this process (the callers).
ENVOY, CLIENT = "envoy", "client"
#: The generator's batch-size histogram (rows per decode step), read beside the CPU.
BATCH_SUM, BATCH_COUNT = "generator_batch_sum", "generator_batch_count"


def _process_cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


@dataclass
class CpuMeter:
    """Reads the CPU seconds spent so far by each component (summed over its replicas)."""

    mesh: Mesh

    def read(self) -> dict[str, float]:
        """Component (and ``envoy``, ``client``) -> CPU seconds since it started."""
        spent: dict[str, float] = defaultdict(float)
        for replica in self.mesh.replicas:
            samples = scrape(replica.process.metrics_port)
            spent[replica.component] += value(samples, "process_cpu_seconds_total")
            if replica.component == "generator":
                spent[BATCH_SUM] += value(samples, "ragmesh_generator_batch_size_sum")
                spent[BATCH_COUNT] += value(samples, "ragmesh_generator_batch_size_count")
        if self.mesh.envoy is not None:
            spent[ENVOY] = _process_cpu(psutil.Process(self.mesh.envoy.process.pid))
        spent[CLIENT] = _process_cpu(psutil.Process(os.getpid()))
        return dict(spent)


def demand_per_query(before: dict[str, float], after: dict[str, float], queries: int) -> dict[str, float]:
    """CPU seconds per answered query of each part between two readings (0 without queries),
    and the generator's mean batch size over them (``generator_batch``)."""
    delta = {name: after[name] - before.get(name, 0.0) for name in after}
    steps = delta.pop(BATCH_COUNT, 0.0)
    rows = delta.pop(BATCH_SUM, 0.0)
    demand = {name: round(spent / queries, 4) if queries > 0 else 0.0 for name, spent in delta.items()}
    demand["generator_batch"] = round(rows / steps, 3) if steps else 0.0
    return demand
