"""Sources synced against real endpoints on loopback, through a real embedder (MiniLM), retriever
(milvus-lite) and Redis, with the core built by the composition root: a folder, a git
repository made here, an S3 API (moto's server, driven with boto3) and a web site (the
standard library's HTTP server). Each: the first sync, an edit, a deletion, and a listing
that fails and deletes nothing; access lists from a sidecar and from an S3 tag; robots.txt."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ragmesh.mesh.processes import ServiceProcess
from ragmesh.vocabulary import JobState
from services.orchestrator.config import CoreConfig, RedisSettings
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.facade import Orchestrator
from services.orchestrator.core.ingest.stored import all_documents
from services.orchestrator.core.sources.config import SourceSettings
from services.orchestrator.core.sources.model import SourceKind, SourceSpec
from services.orchestrator.wiring import build_core
from tests.support.redis_server import RedisServer
from tests.support.source_sites import FILES, FolderSite, S3Site, Site, make_site

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("source-cache")


@pytest.fixture(autouse=True)
def s3_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 takes credentials from the environment, as the readers do in production."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
async def core_for(
    embedder_service: ServiceProcess, retriever_service: ServiceProcess, redis: RedisServer, cache_dir: Path
) -> AsyncIterator[object]:
    made: list[Orchestrator] = []

    def build(spec: SourceSpec) -> Orchestrator:
        config = CoreConfig(
            embedder_addr=embedder_service.address,
            retriever_addr=retriever_service.address,
            generator_addr="127.0.0.1:1",
            redis=RedisSettings(url=redis.url),
            sources=SourceSettings(cache_dir=str(cache_dir), lock_seconds=60.0),
        )
        core = build_core(config)
        core.parts.sources.specs = {spec.name: spec}
        made.append(core)
        return core

    yield build
    for core in made:
        await core.close()


async def _sync(core: Orchestrator, name: str) -> JobState | None:
    manager = core.source_manager()
    return await manager.run_job(await manager.submit(name, ""), "test")


async def _stored(core: Orchestrator, spec: SourceSpec) -> dict[str, tuple[str, tuple[str, ...]]]:
    documents = await all_documents(core.parts.ports.retriever, spec.collection, Deadline(30))
    return {d.document_id.removeprefix(spec.name + ":"): (d.content_hash, d.access) for d in documents}


@pytest.mark.parametrize("kind", list(SourceKind))
async def test_a_source_is_mirrored_through_edits_deletions_and_outages(
    kind: SourceKind, tmp_path: Path, core_for: object
) -> None:
    site = make_site(kind, tmp_path)
    try:
        await _check_mirror(site, core_for)
    finally:
        site.close()


def _key(site: Site, name: str) -> str:
    return site.spec.allow_prefix + f"{name}.html" if site.kind is SourceKind.WEB else f"{name}.md"


async def _check_mirror(site: Site, build: object) -> None:
    core = build(site.spec)  # type: ignore[operator]
    manager, spec = core.source_manager(), site.spec
    for name, text in FILES.items():
        site.put(name, text)
    site.commit("three documents")
    assert await _sync(core, spec.name) is JobState.SUCCEEDED, (await manager.status(spec.name)).error
    first = await _stored(core, spec)
    expected = {_key(site, n) for n in FILES} | ({spec.url} if site.kind is SourceKind.WEB else set())
    assert set(first) == expected  # (the web's robots.txt kept its private page out)
    site.put("crew", "The station cook is named Philippa now; she bakes bread for the whole crew.")
    site.commit("edit")
    assert await _sync(core, spec.name) is JobState.SUCCEEDED
    status = await manager.status(spec.name)
    assert (status.added, status.updated, status.deleted) == (0, 1, 0), status
    edited = await _stored(core, spec)
    assert edited[_key(site, "crew")][0] != first[_key(site, "crew")][0]
    site.remove("garden")
    site.commit("delete")
    assert await _sync(core, spec.name) is JobState.SUCCEEDED
    status = await manager.status(spec.name)
    assert (status.deleted, status.unchanged) == (1, len(expected) - 1), status
    assert set(await _stored(core, spec)) == expected - {_key(site, "garden")}
    site.break_()
    assert await _sync(core, spec.name) is JobState.FAILED
    failed = await manager.status(spec.name)
    assert "nothing was deleted" in failed.error and failed.last_success_at == status.last_success_at
    assert set(await _stored(core, spec)) == expected - {_key(site, "garden")}


async def test_access_lists_come_from_the_sidecar_and_the_s3_tag(tmp_path: Path, core_for: object) -> None:
    (tmp_path / "f").mkdir()
    folder = FolderSite(tmp_path / "f")
    folder.put("pay", "Salaries are paid on the last Friday of the month.")
    folder.put("menu", FILES["crew"])
    (folder.dir / ".ragmesh-acl.toml").write_text('[[rules]]\npaths = ["pay.md"]\nprincipals = ["group:hr"]\n')
    s3 = S3Site(tmp_path)
    try:
        s3.put("pay", "Salaries are paid on the last Friday of the month.")
        s3.tag("pay", "group:hr user:carol")
        for site in (folder, s3):
            core = core_for(site.spec)  # type: ignore[operator]
            assert await _sync(core, site.spec.name) is JobState.SUCCEEDED
            stored = await _stored(core, site.spec)
            assert stored["pay.md"][1] in (("group:hr",), ("group:hr", "user:carol"))
            assert stored.get("menu.md", ("", ("*",)))[1] == ("*",)
    finally:
        s3.close()
