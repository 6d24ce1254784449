"""Prometheus metrics of the generator (``ragmesh_generator_*``).

``sequences_in_flight`` and ``sequences_waiting`` are the autoscaling signal: a replica
whose batch is full and whose queue grows needs a sibling.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Token latencies on this CPU are tens to hundreds of milliseconds; a first token waits
# for a prefill and possibly for a full batch, so its buckets reach further.
_TOKEN_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)
_FIRST_TOKEN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)

TIME_TO_FIRST_TOKEN = Histogram(
    "ragmesh_generator_time_to_first_token_seconds",
    "Seconds from admission to a sequence's first token",
    buckets=_FIRST_TOKEN_BUCKETS,
)
INTER_TOKEN_LATENCY = Histogram(
    "ragmesh_generator_inter_token_latency_seconds",
    "Seconds between consecutive tokens of one sequence",
    buckets=_TOKEN_BUCKETS,
)
TOKENS = Counter("ragmesh_generator_tokens_total", "Tokens processed, by type (prompt, completion)", ["type"])
BATCH_SIZE = Histogram(
    "ragmesh_generator_batch_size", "Rows in each decode step", buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
)
IN_FLIGHT = Gauge("ragmesh_generator_sequences_in_flight", "Sequences in the decode batch now")
WAITING = Gauge("ragmesh_generator_sequences_waiting", "Admitted sequences waiting for a batch slot")
FINISHED = Counter("ragmesh_generator_finished_total", "Generations ended, by finish reason", ["reason"])
REJECTED = Counter("ragmesh_generator_rejected_total", "Generations refused because batch and queue were full")
PROMPT_TOKENS_REUSED = Counter(
    "ragmesh_generator_prompt_tokens_reused_total",
    "Prompt tokens whose keys and values were copied from the cached common head instead of computed",
)
