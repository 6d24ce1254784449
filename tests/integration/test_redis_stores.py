"""The Redis adapters against a real Redis server: the two-level answer cache, collection
versions, and the job store with the Celery task queue (records as the core's JSON, a
submitted task in its queue, an outage as UNAVAILABLE)."""

from __future__ import annotations

import asyncio

import pytest

from ragmesh.vocabulary import CacheLevel, JobState
from services.common.errors import Unavailable
from services.common.principal import ANONYMOUS
from services.orchestrator.adapters.background.queue import CeleryTaskQueue
from services.orchestrator.adapters.redis.answers import RedisAnswers
from services.orchestrator.adapters.redis.guard import RedisGuard
from services.orchestrator.adapters.redis.job_store import RedisJobStore
from services.orchestrator.adapters.redis.versions import RedisCollectionVersions
from services.orchestrator.core.domain import Document, QueryInput
from services.orchestrator.core.jobs.manager import JobManager
from services.orchestrator.core.jobs.records import BatchRequest, BatchResult, IngestJobRequest, decode_job_request
from services.orchestrator.core.query.cache import AnswerCache, cache_key
from services.orchestrator.core.settings import IngestSettings
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.integration


def _replica(url: str, timeout: float = 0.2, backoff: float = 0.0) -> tuple[AnswerCache, RedisCollectionVersions]:
    redis = RedisGuard(url, timeout, backoff)
    return AnswerCache(RedisAnswers(redis), 100, 60, 600), RedisCollectionVersions(redis)


async def test_l1_hit_then_l2_hit_from_another_replica(redis_server: RedisServer) -> None:
    first, _ = _replica(redis_server.url)
    second, _ = _replica(redis_server.url)
    assert await first.get("k") is None
    await first.put("k", b"answer")
    assert await first.get("k") == (CacheLevel.L1, b"answer")
    assert await second.get("k") == (CacheLevel.L2, b"answer")  # shared through Redis
    assert await second.get("k") == (CacheLevel.L1, b"answer")  # the L2 hit filled L1
    assert (first.counts.l1_hits, first.counts.misses) == (1, 1)
    assert (second.counts.l1_hits, second.counts.l2_hits) == (1, 1)
    assert second.counts.hit_rate == 1.0


async def test_redis_down_is_a_miss_not_an_error(redis_server: RedisServer) -> None:
    cache, versions = _replica(redis_server.url, backoff=30.0)
    await cache.put("k", b"v")
    redis_server.stop()
    assert await cache.get("k") == (CacheLevel.L1, b"v")  # L1 still serves
    assert await cache.get("other") is None
    assert cache.shared.errors == 1
    assert await cache.get("third") is None
    assert cache.shared.errors == 1  # backing off: no second timeout paid
    await cache.put("k2", b"v2")
    assert await cache.get("k2") == (CacheLevel.L1, b"v2")
    assert await versions.get("docs") == "0"


async def test_versions_are_shared_and_bumps_change_keys(redis_server: RedisServer) -> None:
    _, mine = _replica(redis_server.url)
    _, theirs = _replica(redis_server.url)
    before = await theirs.get("docs")
    assert await mine.bump("docs") == 1
    after = await theirs.get("docs")
    assert before != after
    assert cache_key({"q": "x", "version": before}) != cache_key({"q": "x", "version": after})
    assert theirs.number("docs") == 1


async def test_versions_without_redis_are_local() -> None:
    versions = RedisCollectionVersions(RedisGuard("", 0.1, 0.0))
    first = await versions.get("docs")
    assert await versions.bump("docs") == 1
    assert await versions.get("docs") != first


async def test_a_local_bump_invalidates_this_replica_even_when_redis_is_down(redis_server: RedisServer) -> None:
    _, versions = _replica(redis_server.url)
    _, other = _replica(redis_server.url)
    before = await versions.get("docs")
    redis_server.stop()
    await versions.bump("docs")
    during = await versions.get("docs")
    assert during != before
    redis_server.start()  # a new, empty Redis: the change made meanwhile is published
    after = await versions.get("docs")
    assert after not in (before, during)
    assert await other.get("docs") == after  # replicas agree again


async def test_replicas_agree_on_keys_after_one_of_them_ingests(redis_server: RedisServer) -> None:
    _, mine = _replica(redis_server.url)
    _, theirs = _replica(redis_server.url)
    await mine.bump("docs")
    assert await mine.get("docs") == await theirs.get("docs")


@pytest.mark.parametrize("size", [0, 1])
async def test_l1_can_be_turned_off_or_tiny(size: int) -> None:
    cache = AnswerCache(RedisAnswers(RedisGuard("", 0.1, 0.0)), size, 60, 600)
    await cache.put("a", b"1")
    await cache.put("b", b"2")
    assert await cache.get("a") is None
    assert (await cache.get("b") is not None) == (size == 1)


async def test_changes_made_during_an_outage_are_all_published_without_further_requests(
    redis_server: RedisServer,
) -> None:
    _, versions = _replica(redis_server.url)
    versions.publish_every_seconds = 0.05
    _, other = _replica(redis_server.url)
    await versions.bump("docs")
    redis_server.stop()
    await versions.bump("docs")
    await versions.bump("docs")
    await versions.bump("notes")  # pending changes of more than one collection
    assert versions.pending == {"docs": 2, "notes": 1}
    redis_server.start()  # a new, empty Redis
    versions.start()
    try:
        for _ in range(100):  # the background publisher, not a lookup, publishes them
            if not any(versions.pending.values()):
                break
            await asyncio.sleep(0.05)
    finally:
        await versions.close()
    assert versions.pending == {"docs": 0, "notes": 0}
    assert (await other.get("docs"), await other.get("notes")) == ("2", "1")  # each change counted once
    assert versions.number("docs") == 2


async def test_a_replica_learns_another_replicas_bump_from_the_feed_without_reading_redis(
    redis_server: RedisServer,
) -> None:
    _, bumper = _replica(redis_server.url)
    _, reader = _replica(redis_server.url)
    reader.start()
    try:
        assert reader.feed is not None
        async with asyncio.timeout(10):
            await reader.feed.subscribed.wait()
        first = await reader.get("docs")  # read once, then trusted while the feed is up
        reads = reader.reads
        for _ in range(20):
            assert await reader.get("docs") == first
        assert reader.reads == reads  # an L1 lookup costs no Redis round trip
        await bumper.bump("docs")
        async with asyncio.timeout(5):  # the bound: the announcement arrives in milliseconds
            while await reader.get("docs") == first:
                await asyncio.sleep(0.005)
        assert reader.reads == reads and await reader.get("docs") == "1"  # learned from the message
    finally:
        await reader.close()


async def test_without_the_feed_every_lookup_reads_the_shared_version(redis_server: RedisServer) -> None:
    _, bumper = _replica(redis_server.url)
    _, reader = _replica(redis_server.url)  # not started: no subscription
    assert await reader.get("docs") == "0"
    await bumper.bump("docs")
    assert await reader.get("docs") == "1" and reader.reads == 2


async def test_the_job_store_keeps_records_and_the_queue_sends_tasks(redis_server: RedisServer) -> None:
    store = RedisJobStore(RedisGuard(redis_server.url, 2.0, 0.0))
    queue = CeleryTaskQueue(redis_server.url, 2.0)
    manager = JobManager(store, queue, IngestSettings())
    job_id = await manager.submit(IngestJobRequest("docs", (Document("d1", "text", {"lang": "en"}), Document("d2"))))
    job = await manager.get(job_id)
    assert (job.state, job.progress.documents_total) == (JobState.PENDING, 2)
    payload = await store.job_payload(job_id)
    assert payload is not None and decode_job_request(payload).documents[0].metadata == {"lang": "en"}
    guard = RedisGuard(redis_server.url, 2.0, 0.0)
    assert await guard.call_or_raise("llen", lambda r: r.llen("ragmesh.ingest")) == 1  # the task, queued
    batch_id = await manager.submit_batch(BatchRequest((QueryInput("q", "docs"),), ANONYMOUS))
    await store.add_result(batch_id, BatchResult(0, error_code="NOT_FOUND", error="no such collection"))
    batch, results = await manager.get_batch(batch_id, include_results=True)
    assert (batch.done, results) == (1, [BatchResult(0, error_code="NOT_FOUND", error="no such collection")])
    await manager.close()
    await guard.close()


async def test_redis_down_makes_submitting_unavailable(redis_server: RedisServer) -> None:
    manager = JobManager(
        RedisJobStore(RedisGuard(redis_server.url, 0.5, 0.0)), CeleryTaskQueue(redis_server.url, 0.5), IngestSettings()
    )
    redis_server.stop()
    with pytest.raises(Unavailable, match="background jobs are unavailable"):
        await manager.submit(IngestJobRequest("docs", (Document("d", "text"),)))
    with pytest.raises(Unavailable, match="background jobs are unavailable"):
        await manager.submit_batch(BatchRequest((QueryInput("q"),), ANONYMOUS))
    await manager.close()
