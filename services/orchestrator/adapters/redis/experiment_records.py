"""Experiment records in Redis, shared by every orchestrator replica.

Keys (under a configurable prefix):

- ``{prefix}:records:{experiment}`` — a stream, one entry per query (field ``r``: the record
  as JSON), capped with ``XADD MAXLEN ~ N`` so it never grows past about N entries;
- ``{prefix}:trace:{trace_id}`` — "experiment:variant" of a recorded query, with the feedback TTL:
  it tells feedback for a real query from feedback for an unknown trace id;
- ``{prefix}:feedback:{trace_id}`` — a hash (rating, labels, timestamp) with the same TTL.

Every replica appends to the same stream, so a read sees every replica's queries. Each
Redis call goes through :class:`RedisGuard` (bounded by its timeout, failures counted,
back-off after a failure); a failed write of a record is counted and dropped, never turned
into a failed query.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, cast

import redis.asyncio as aioredis

from services.orchestrator.adapters.redis.guard import RedisGuard, as_bytes
from services.orchestrator.core.experiments.records import (
    Feedback,
    QueryRecord,
    check_feedback,
    check_record,
    unknown_trace,
)

log = logging.getLogger(__name__)
#: Stream entries read per Redis call: each call stays well inside the guard's timeout.
READ_PAGE = 500
#: A stream entry as redis-py returns it: (id, {field: value}).
Entry = tuple[bytes, dict[bytes, bytes]]


class RedisRecordStore:
    """The :class:`RecordStore` of replicas sharing one Redis."""

    def __init__(self, guard: RedisGuard, max_records: int, feedback_ttl_seconds: float, prefix: str) -> None:
        self.guard = guard
        self.max_records = max_records
        self.ttl_ms = max(1, int(feedback_ttl_seconds * 1000))
        self.prefix = prefix
        #: Records that could not be written (Redis down or slow).
        self.dropped = 0

    def stream_key(self, experiment: str) -> str:
        """The stream of ``experiment``'s records."""
        return f"{self.prefix}:records:{experiment}"

    def _trace_key(self, trace_id: str) -> str:
        return f"{self.prefix}:trace:{trace_id}"

    def feedback_key(self, trace_id: str) -> str:
        return f"{self.prefix}:feedback:{trace_id}"

    async def record_query(self, record: QueryRecord) -> None:
        """Append the record and index its trace id, in one transaction."""
        check_record(record)

        async def write(client: aioredis.Redis) -> bool:
            async with client.pipeline(transaction=True) as pipe:
                pipe.xadd(
                    self.stream_key(record.experiment),
                    {"r": record.to_json()},
                    maxlen=self.max_records,
                    approximate=True,
                )
                if record.trace_id:
                    pipe.set(self._trace_key(record.trace_id), f"{record.experiment}:{record.variant}", px=self.ttl_ms)
                await pipe.execute()
            return True

        if not await self.guard.call("experiment-record", write, False):
            self.dropped += 1

    async def record_feedback(self, trace_id: str, rating: float, labels: Mapping[str, int]) -> tuple[str, str]:
        """Store feedback for a recorded query; NotFound for an unknown trace id, Unavailable
        when Redis cannot be reached (feedback is not silently lost)."""
        check_feedback(trace_id, rating, labels)

        async def write(client: aioredis.Redis) -> str:
            owner = await client.get(self._trace_key(trace_id))
            if owner is None:
                return ""
            fields: dict[Any, Any] = {
                "rating": repr(float(rating)),
                "labels": json.dumps(dict(labels)),
                "at": repr(time.time()),
            }
            async with client.pipeline(transaction=True) as pipe:
                pipe.hset(self.feedback_key(trace_id), mapping=fields)
                pipe.pexpire(self.feedback_key(trace_id), self.ttl_ms)
                await pipe.execute()
            return as_bytes(owner).decode()

        owner = await self.guard.call_or_raise("experiment-feedback", write)
        if not owner:
            raise unknown_trace(trace_id)
        experiment, _, variant = owner.partition(":")
        return experiment, variant

    async def read(self, experiment: str) -> list[QueryRecord]:
        """The records among the newest ``max_records`` stream entries, oldest first, feedback
        joined; Unavailable when Redis cannot be reached. Read in pages so each call stays short."""
        newest_first: list[QueryRecord] = []
        upper, entries = "+", 0
        while entries < self.max_records:
            count = min(READ_PAGE, self.max_records - entries)
            page = await self.guard.call_or_raise(
                "experiment-read", partial(_read_page, self, experiment=experiment, upper=upper, count=count)
            )
            newest_first.extend(page.records)
            entries += page.entries
            if page.entries < count:
                break
            upper = "(" + page.last_id  # exclusive: continue below the last id read
        newest_first.reverse()
        return newest_first


@dataclass
class _Page:
    """Stream entries read in one call: how many, the oldest one's id, the records among them."""

    entries: int
    last_id: str
    records: list[QueryRecord]


async def _read_page(store: RedisRecordStore, client: aioredis.Redis, experiment: str, upper: str, count: int) -> _Page:
    """One guarded call: a page of the stream (newest first) and the feedback of its queries."""
    entries = cast(list[Entry], await client.xrevrange(store.stream_key(experiment), upper, "-", count=count))
    last_id = as_bytes(entries[-1][0]).decode() if entries else ""
    records = [record for _id, fields in entries if (record := _parse(fields))]
    traced = [record.trace_id for record in records if record.trace_id]
    if traced:
        async with client.pipeline(transaction=False) as pipe:
            for trace_id in traced:
                pipe.hgetall(store.feedback_key(trace_id))
            replies = await pipe.execute()
        feedback = {t: _feedback(reply) for t, reply in zip(traced, replies, strict=True) if reply}
        records = [replace(r, feedback=feedback.get(r.trace_id)) for r in records]
    return _Page(len(entries), last_id, records)


def _parse(fields: Mapping[bytes, bytes]) -> QueryRecord | None:
    """A stream entry's record, or None (logged) for an entry that is not one."""
    try:
        return QueryRecord.from_json(fields[b"r"])
    except (KeyError, ValueError) as error:
        log.warning("skipping a stream entry that is not an experiment record: %s", error)
        return None


def _feedback(reply: Mapping[bytes, bytes]) -> Feedback:
    labels: dict[str, int] = json.loads(reply.get(b"labels", b"{}"))
    return Feedback(float(reply[b"rating"]), labels, float(reply.get(b"at", b"0")))
