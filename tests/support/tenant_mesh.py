"""``ragmesh up`` with API keys on, as the MCP and console tests use it: two orchestrators (MCP
sessions must stay on their replica through Envoy), a worker on a private Redis for ingestion
jobs, and the sample corpus indexed into tenant acme's ``acme_docs``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ragmesh.cli.ingest import ingest_files
from ragmesh.cli.up import SAMPLE_CORPUS
from ragmesh.client import RagmeshClient
from ragmesh.vocabulary.keys import Grant, digest, new_key, toml_entry
from tests.support.mesh_cli import READY_LINE, UpProcess
from tests.support.redis_server import RedisServer

#: Tenant acme: a key that may write its collections, a read-only one; tenant globex's key.
WRITER, READER, OTHER = new_key(), new_key(), new_key()
COLLECTION = "acme_docs"
GRANTS = (
    Grant(digest(WRITER), "acme", ("acme_*",), write=True),
    Grant(digest(READER), "acme", ("acme_*",), write=False),
    Grant(digest(OTHER), "globex", ("globex_*",), write=True),
)


@contextlib.contextmanager
def tenant_up(work: Path) -> Iterator[UpProcess]:
    """The mesh, ready, with the sample corpus in ``acme_docs``; stopped (Ctrl-C) on the way out."""
    keys = work / "keys.toml"
    keys.write_text("".join(toml_entry(grant) for grant in GRANTS))
    redis = RedisServer(work)
    redis.start()
    try:
        replicas = ["--orchestrators", "2", "--workers", "1", "--redis-url", redis.url]
        up = UpProcess.start(work, *replicas, "--api-key-file", str(keys))
        try:
            up.wait_for(READY_LINE, timeout=900)
            with RagmeshClient(up.address, api_key=WRITER, timeout=300) as client:
                assert ingest_files(client, (SAMPLE_CORPUS,), COLLECTION), "the sample corpus was not indexed"
            yield up
        finally:
            code = up.stop()
            assert code == 0, "\n".join(up.lines[-40:])
    finally:
        redis.stop()
