"""Syncs in the core over fake ports: what is added, changed, left alone and deleted; the
guards (a failed listing, a deletion of more than the allowed share, two syncs at once); a
document that cannot be read; access lists from the listing; the job and its status."""

from __future__ import annotations

import pytest

from ragmesh.vocabulary import JobState
from services.common.errors import FailedPrecondition, NotFound, Unavailable
from services.orchestrator.core.domain import IngestProgress
from services.orchestrator.core.jobs.records import JobRecord
from services.orchestrator.core.sources.manager import SourceManager
from services.orchestrator.core.sources.model import SourceKind, SourceSpec
from services.orchestrator.core.sources.sync import SourceSyncer, SyncFailed
from tests.support.fake_ports import Core
from tests.support.fake_sources import DictReader, MemoryStates
from tests.support.fake_stores import MemoryJobStore, MemoryTaskQueue

SPEC = SourceSpec("kb", SourceKind.FOLDER, "docs", path="/srv/kb")


async def _nothing(progress: IngestProgress) -> None:
    return None


def _syncer(core: Core, states: MemoryStates) -> SourceSyncer:
    return SourceSyncer(core.ingestor, core.retriever, core.versions, states)


def _stored(core: Core) -> set[str]:
    return {chunk.document_id for chunk in core.retriever.stored.get("docs", {}).values()}


async def test_a_sync_adds_changes_skips_and_deletes() -> None:
    core, states = Core(), MemoryStates()
    reader = DictReader({"a.md": "envoy balances requests", "b.md": "redis caches answers", "c.md": "milvus stores"})
    first = await _syncer(core, states).run(SPEC, reader, _nothing)
    assert (first.added, first.updated, first.unchanged, first.deleted) == (3, 0, 0, 0)
    assert _stored(core) == {"kb:a.md", "kb:b.md", "kb:c.md"}
    reader.files["a.md"] = "envoy balances every request"
    del reader.files["c.md"]
    reader.reads.clear()
    second = await _syncer(core, states).run(SPEC, reader, _nothing)
    assert (second.added, second.updated, second.unchanged, second.deleted) == (0, 1, 1, 1)
    assert reader.reads == ["a.md"]  # b.md's token did not change: not even read
    assert _stored(core) == {"kb:a.md", "kb:b.md"}


async def test_a_failed_listing_deletes_nothing() -> None:
    core, states = Core(), MemoryStates()
    reader = DictReader({"a.md": "envoy", "b.md": "redis"})
    await _syncer(core, states).run(SPEC, reader, _nothing)
    reader.broken = True
    with pytest.raises(SyncFailed, match="listing /srv/kb failed, nothing was deleted"):
        await _syncer(core, states).run(SPEC, reader, _nothing)
    assert _stored(core) == {"kb:a.md", "kb:b.md"}


async def test_a_listing_that_would_delete_more_than_the_share_deletes_nothing() -> None:
    core, states = Core(), MemoryStates()
    reader = DictReader({f"{i}.md": f"cache port {i}" for i in range(4)})
    await _syncer(core, states).run(SPEC, reader, _nothing)
    reader.files = {"0.md": "cache port 0"}  # 3 of 4 gone: more than 50 %
    with pytest.raises(SyncFailed, match=r"would delete 3 of the 4 stored, more than max_delete_share \(50%\)"):
        await _syncer(core, states).run(SPEC, reader, _nothing)
    assert len(_stored(core)) == 4
    lenient = SourceSpec("kb", SourceKind.FOLDER, "docs", path="/srv/kb", max_delete_share=1.0)
    assert (await _syncer(core, states).run(lenient, reader, _nothing)).deleted == 3


async def test_an_unreadable_document_is_reported_and_the_others_indexed() -> None:
    core, states = Core(), MemoryStates()
    reader = DictReader({"a.md": "envoy", "locked.md": None, "c.md": "redis"})
    result = await _syncer(core, states).run(SPEC, reader, _nothing)
    assert result.failed == 1 and result.errors[0].document_id == "kb:locked.md"
    assert "permission denied" in result.errors[0].reason
    assert _stored(core) == {"kb:a.md", "kb:c.md"}
    assert "kb:locked.md" not in states.saved["kb"]  # read again next time


async def test_access_lists_come_from_the_listing_and_a_change_needs_no_embedding() -> None:
    core, states = Core(), MemoryStates()
    reader = DictReader({"pay.md": "salaries port", "pub.md": "envoy"}, access={"pay.md": ("group:hr",)})
    await _syncer(core, states).run(SPEC, reader, _nothing)
    stored = core.retriever.stored["docs"]
    assert {c.document_id: c.access for c in stored.values()} == {"kb:pay.md": ("group:hr",), "kb:pub.md": ("*",)}
    embeds = len(core.embedder.calls)
    reader.access = {"pay.md": ("group:finance",)}
    await _syncer(core, states).run(SPEC, reader, _nothing)
    assert {c.access for c in stored.values() if c.document_id == "kb:pay.md"} == {("group:finance",)}
    assert len(core.embedder.calls) == embeds


def _manager(core: Core, states: MemoryStates, reader: DictReader) -> tuple[SourceManager, MemoryJobStore]:
    store = MemoryJobStore()
    syncer = _syncer(core, states)
    return SourceManager({"kb": SPEC}, lambda spec: reader, syncer, (store, MemoryTaskQueue()), 60.0), store


async def test_a_sync_job_records_its_outcome_and_one_runs_at_a_time() -> None:
    core, states = Core(), MemoryStates()
    manager, store = _manager(core, states, DictReader({"a.md": "envoy", "b.md": None}))
    job_id = await manager.submit("kb", "tag")
    assert job_id.startswith("tag-") and await manager.run_job(job_id, "w1") is JobState.SUCCEEDED
    status = await manager.status("kb")
    assert (status.state, status.added, status.failed, status.job_id) == (JobState.SUCCEEDED, 1, 1, job_id)
    assert status.last_success_at > 0 and status.errors[0].document_id == "kb:b.md"
    job = await store.job(job_id)
    assert job is not None and job.state is JobState.SUCCEEDED and job.progress.documents_failed == 1
    states.locks["kb"] = "someone-else"
    await store.create_job(JobRecord("tag-2", "docs"), b'{"format":1,"value":{"source":"kb"}}')
    assert await manager.run_job("tag-2", "w1") is JobState.FAILED
    refused = await store.job("tag-2")
    assert refused is not None and refused.error == "a sync of this source is running (job someone-else)"
    assert await manager.status("kb") == status  # the running sync's status is its own


async def test_a_failed_sync_keeps_the_last_success_and_unknown_or_busy_sources_are_refused() -> None:
    core, states = Core(), MemoryStates()
    reader = DictReader({"a.md": "envoy"})
    manager, _ = _manager(core, states, reader)
    await manager.run_job(await manager.submit("kb", ""), "w")
    success = (await manager.status("kb")).last_success_at
    reader.broken = True
    assert await manager.run_job(await manager.submit("kb", ""), "w") is JobState.FAILED
    failed = await manager.status("kb")
    assert (
        failed.state is JobState.FAILED and failed.last_success_at == success and "nothing was deleted" in failed.error
    )
    with pytest.raises(NotFound, match="no source 'nope'; the sources are: kb"):
        await manager.submit("nope", "")
    states.locks["kb"] = "job-1"
    with pytest.raises(FailedPrecondition, match=r"a sync of source 'kb' is running \(job job-1\)"):
        await manager.submit("kb", "")


async def test_a_redelivered_sync_holding_its_own_lock_goes_on_and_a_component_error_fails_it() -> None:
    core, states = Core(), MemoryStates()
    manager, _ = _manager(core, states, DictReader({"a.md": "envoy"}))
    job_id = await manager.submit("kb", "")
    states.locks["kb"] = job_id  # its worker died holding the lock
    assert await manager.run_job(job_id, "w2") is JobState.SUCCEEDED and "kb" not in states.locks
    core.embedder.fail_with = Unavailable("embedder away")
    core.retriever.stored.clear()
    assert await manager.run_job(await manager.submit("kb", ""), "w") is JobState.FAILED
    assert (await manager.status("kb")).error == "UNAVAILABLE: embedder away"
