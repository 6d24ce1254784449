"""The OpenAI-compatible HTTP surface against gRPC, both through Envoy, on the same
questions: end-to-end latency and time to first token of streamed answers (part of
``make bench-e2e``)."""

from __future__ import annotations

import json
import statistics
import time

import httpx

from ragmesh.client import RagmeshClient, TokenEvent


def _grpc_stream(client: RagmeshClient, question: str, collection: str, tokens: int) -> tuple[float, float]:
    started = time.perf_counter()
    first = 0.0
    for event in client.query_stream(question, collection, max_new_tokens=tokens, bypass_cache=True):
        if isinstance(event, TokenEvent) and not first:
            first = time.perf_counter() - started
    return time.perf_counter() - started, first


def _http_stream(http: httpx.Client, question: str, collection: str, tokens: int) -> tuple[float, float]:
    body = {
        "model": "ragmesh",
        "stream": True,
        "max_tokens": tokens,
        "temperature": 0,
        "collection": collection,
        "bypass_cache": True,
        "messages": [{"role": "user", "content": question}],
    }
    started = time.perf_counter()
    first = 0.0
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            if choices[0].get("delta", {}).get("content") and not first:
                first = time.perf_counter() - started
    return time.perf_counter() - started, first


def chat_vs_grpc(address: str, questions: list[str], collection: str, tokens: int, rounds: int) -> dict[str, float]:
    """p50 latency and TTFT of streamed answers over HTTP and over gRPC (alternating per question)."""
    grpc_total: list[float] = []
    grpc_first: list[float] = []
    http_total: list[float] = []
    http_first: list[float] = []
    with RagmeshClient(address) as client, httpx.Client(base_url=f"http://{address}", timeout=300) as http:
        for _ in range(rounds):
            for question in questions:
                total, first = _grpc_stream(client, question, collection, tokens)
                grpc_total.append(total)
                grpc_first.append(first)
                total, first = _http_stream(http, question, collection, tokens)
                http_total.append(total)
                http_first.append(first)
    median = statistics.median
    return {
        "chat_http_p50_ms": round(median(http_total) * 1000, 2),
        "chat_grpc_p50_ms": round(median(grpc_total) * 1000, 2),
        "chat_http_over_grpc": round(median(http_total) / median(grpc_total), 3),
        "chat_http_ttft_p50_ms": round(median(http_first) * 1000, 2),
        "chat_grpc_ttft_p50_ms": round(median(grpc_first) * 1000, 2),
        "chat_ttft_difference_ms": round((median(http_first) - median(grpc_first)) * 1000, 2),
    }
