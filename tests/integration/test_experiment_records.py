"""Experiment records through a real Redis: two replicas' stores merge, feedback given on one
replica joins the query recorded on the other, the stream stays capped, and a Redis outage
drops records without failing anything while feedback and reads say Unavailable."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from ragmesh.vocabulary.experiments.parsing import parse_experiments
from services.common.errors import NotFound, Unavailable
from services.orchestrator.adapters.redis import experiment_records as redis_records
from services.orchestrator.adapters.redis.experiment_records import RedisRecordStore
from services.orchestrator.adapters.redis.guard import RedisGuard
from services.orchestrator.core.experiments.manager import Experiments, QueryOutcome
from services.orchestrator.core.experiments.records import QueryRecord
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.integration
CONFIG = {
    "experiments": [
        {"name": "merge", "variants": [{"name": "ctl", "ratio": 0.5}, {"name": "alt", "ratio": 0.5, "top_k": 2}]}
    ]
}


@pytest.fixture
async def guards(redis_server: RedisServer) -> AsyncIterator[tuple[RedisGuard, RedisGuard]]:
    """Two replicas' Redis clients (each with its own guard and connection pool)."""
    first, second = (RedisGuard(redis_server.url, 2.0, 0.0) for _ in range(2))
    yield first, second
    await first.close()
    await second.close()


def _store(guard: RedisGuard, max_records: int = 100, prefix: str = "") -> RedisRecordStore:
    return RedisRecordStore(guard, max_records, 60.0, prefix or f"test:{uuid.uuid4().hex[:8]}")


def _trace(i: int) -> str:
    return f"{i:032x}"


async def test_two_replicas_records_merge_and_feedback_joins_across_them(
    guards: tuple[RedisGuard, RedisGuard],
) -> None:
    one = Experiments(parse_experiments(CONFIG), _store(guards[0], prefix="test:merge"))
    two = Experiments(parse_experiments(CONFIG), _store(guards[1], prefix="test:merge"))
    variants: dict[int, str] = {}
    for i in range(30):
        replica = one if i % 2 else two
        assignment = replica.assign("docs", f"caller-{i}", _trace(i))
        assert assignment is not None
        variants[i] = assignment.variant
        replica.record_soon(assignment, QueryOutcome(_trace(i), 10.0 + i, ttft_ms=5.0, completion_tokens=i))
    await one.flush()
    await two.flush()
    # Recorded by replica one, rated through replica two.
    assert await two.record_feedback(_trace(3), 2.0, {"doc-a": 2}) == ("merge", variants[3])
    await one.record_feedback(_trace(4), 5.0, {})
    for replica in (one, two):
        records = await replica.store.read("merge")
        assert sorted(r.trace_id for r in records) == [_trace(i) for i in range(30)]
        joined = {r.trace_id: r.feedback for r in records if r.feedback is not None}
        assert set(joined) == {_trace(3), _trace(4)}
        rated = joined[_trace(3)]
        assert rated is not None and rated.rating == 2.0 and rated.labels == {"doc-a": 2}
    with pytest.raises(NotFound):
        await one.record_feedback(_trace(999), 3.0, {})
    report, _ = await two.report("merge", "rating")
    assert sum(s.count for s in report.variants) == 2 and report.records == 30


async def test_the_stream_stays_capped_and_reads_page_through_it(
    guards: tuple[RedisGuard, RedisGuard], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert guards[0].client is not None
    client: aioredis.Redis = guards[0].client
    await client.config_set("stream-node-max-entries", 10)  # small nodes so approximate trimming bites early
    store = _store(guards[0], max_records=20)
    for i in range(300):
        await store.record_query(QueryRecord("capped", "ctl", _trace(i), float(i), float(i)))
    length = await client.xlen(store.stream_key("capped"))
    assert 20 <= length <= 30  # MAXLEN ~ 20 trims whole nodes of 10 entries
    assert 0 < await client.pttl(f"{store.prefix}:trace:{_trace(299)}") <= 60_000  # feedback window
    monkeypatch.setattr(redis_records, "READ_PAGE", 7)
    records = await store.read("capped")
    assert [r.latency_ms for r in records] == [float(i) for i in range(280, 300)]  # the newest 20, oldest first
    # Another version's replica adds a field, and something else writes junk: both are read past.
    newer = QueryRecord("capped", "ctl", _trace(300), 0.0, 300.0).to_json()[:-1] + ',"replica":"b"}'
    await client.xadd(store.stream_key("capped"), {"r": newer})
    await client.xadd(store.stream_key("capped"), {"other": "junk"})
    records = await store.read("capped")
    assert records[-1].latency_ms == 300.0 and len(records) == 19  # 20 entries read, the junk skipped


async def test_a_redis_outage_drops_records_and_feedback_says_unavailable(
    redis_server: RedisServer, guards: tuple[RedisGuard, RedisGuard]
) -> None:
    store = _store(guards[0])
    await store.record_query(QueryRecord("down", "ctl", _trace(1), 0.0, 1.0))
    redis_server.stop()
    await store.record_query(QueryRecord("down", "ctl", _trace(2), 0.0, 1.0))  # must not raise
    assert store.dropped == 1
    with pytest.raises(Unavailable):
        await store.record_feedback(_trace(1), 4.0, {})
    with pytest.raises(Unavailable):
        await store.read("down")
