"""Scrape and read a service's Prometheus endpoint, and wait (a bounded number of polls)
until some of its metrics reach given values."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``http://127.0.0.1:port/metrics`` keyed by (name, labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum of samples called ``name`` whose labels include ``labels`` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


def _readings(port: int, wanted: Mapping[str, float], labels: Mapping[str, str]) -> dict[str, float]:
    samples = scrape(port)
    return {name: value(samples, name, **labels) for name in wanted}


def wait_for_metrics(
    port: int, wanted: Mapping[str, float], *, polls: int = 100, interval: float = 0.1, **labels: str
) -> None:
    """Poll ``port`` until every metric in ``wanted`` (summed over samples with ``labels``)
    has its wanted value; AssertionError after ``polls`` scrapes that did not show it."""
    now: dict[str, float] = {}
    for attempt in range(polls):
        now = _readings(port, wanted, labels)
        if now == dict(wanted):
            return
        if attempt + 1 < polls:
            time.sleep(interval)
    raise AssertionError(f"metrics {dict(labels)} never reached {dict(wanted)} (last seen {now})")


async def until_metrics(
    port: int, wanted: Mapping[str, float], *, polls: int = 600, interval: float = 0.05, **labels: str
) -> None:
    """:func:`wait_for_metrics` for a test on the event loop (sleeps without blocking it)."""
    now: dict[str, float] = {}
    for attempt in range(polls):
        now = await asyncio.to_thread(_readings, port, wanted, labels)
        if now == dict(wanted):
            return
        if attempt + 1 < polls:
            await asyncio.sleep(interval)
    raise AssertionError(f"metrics {dict(labels)} never reached {dict(wanted)} (last seen {now})")


async def until_metric_at_least(
    port: int, name: str, least: float, *, polls: int = 600, interval: float = 0.05
) -> float:
    """Poll ``port`` (bounded) until metric ``name`` (summed) is at least ``least``; its value."""
    now = 0.0
    for attempt in range(polls):
        now = value(await asyncio.to_thread(scrape, port), name)
        if now >= least:
            return now
        if attempt + 1 < polls:
            await asyncio.sleep(interval)
    raise AssertionError(f"{name} on :{port} never reached {least} (last seen {now})")
