"""The parser pool: real worker processes, a hung or exploding parser killed and replaced."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from services.common.config import Env
from services.common.errors import Unavailable
from services.parsing import DocumentRejected, ParseLimits, ParserPool, ParseSettings
from tests.support import bad_parsers, documents

LIMITS = ParseLimits(time_seconds=2.0, memory_mb=512)


@pytest.fixture
async def hang_pool() -> AsyncIterator[ParserPool]:
    pool = ParserPool(2, LIMITS, bad_parsers.hang_parse)
    await pool.start()
    yield pool
    await pool.close()


async def test_real_documents_parse_in_worker_processes() -> None:
    pool = ParserPool(1, LIMITS)
    try:
        document = await pool.parse(documents.pdf([["One."], ["The fact is on page two."]]), None, "a.pdf")
        assert [(s.text, s.page) for s in document.segments] == [("One.", 1), ("The fact is on page two.", 2)]
        with pytest.raises(DocumentRejected, match=r"the extension \.pdf says PDF, but the content is HTML"):
            await pool.parse(documents.HTML_PAGE.encode(), None, "a.pdf")
        assert pool.replaced == 0  # a rejection leaves the worker in service
    finally:
        await pool.close()


async def test_hung_parser_is_killed_and_replaced_while_others_go_on(hang_pool: ParserPool) -> None:
    hung = asyncio.create_task(hang_pool.parse(b"hang", None, "slow.txt"))
    # While one worker hangs, the other serves documents (and the event loop stays free to run this).
    for index in range(3):
        assert (await hang_pool.parse(f"doc {index}".encode(), None, "a.txt")).segments[0].text == f"doc {index}"
    assert not hung.done()
    with pytest.raises(DocumentRejected, match=r"longer than the limit of 2 s \(time_seconds\)"):
        await hung
    assert hang_pool.replaced == 1
    # The pool recovered: two workers serve again, neither of them the killed one.
    results = await asyncio.gather(*(hang_pool.parse(b"again", None, "a.txt") for _ in range(4)))
    assert {r.segments[0].text for r in results} == {"again"}


async def test_time_limit_per_call(hang_pool: ParserPool) -> None:
    quick = dataclasses.replace(LIMITS, time_seconds=0.2)
    with pytest.raises(DocumentRejected, match=r"longer than the limit of 0.2 s"):
        await hang_pool.parse(b"hang", None, "slow.txt", quick)
    assert (await hang_pool.parse(b"fine", None, "a.txt")).segments[0].text == "fine"


async def test_memory_blowup_crash_and_bug_are_contained() -> None:
    pool = ParserPool(1, LIMITS, bad_parsers.greedy_parse)
    try:
        first = await pool.parse(b"before", None, "a.txt")
        with pytest.raises(DocumentRejected, match=r"more memory than the limit of 512 MB \(memory_mb\)"):
            await pool.parse(b"allocate", None, "a.txt")
        with pytest.raises(DocumentRejected, match=r"the parser process died on this document \(killed by SIGSEGV"):
            await pool.parse(b"crash", None, "a.txt")
        with pytest.raises(DocumentRejected, match=r"the parser failed on this document \(ZeroDivisionError"):
            await pool.parse(b"bug", None, "a.txt")
        after = await pool.parse(b"after", None, "a.txt")
        assert after.segments[0].text == "after" and after.title != first.title  # a new process
        assert pool.replaced == 3
    finally:
        await pool.close()


async def test_oversized_content_is_rejected_before_it_reaches_a_worker() -> None:
    pool = ParserPool(1, dataclasses.replace(LIMITS, max_bytes=10), bad_parsers.hang_parse)
    try:
        with pytest.raises(DocumentRejected, match=r"11 bytes, more than the limit of 10 \(max_bytes\)"):
            await pool.parse(b"x" * 11, None, "a.txt")
    finally:
        await pool.close()
    with pytest.raises(Unavailable, match="closed"):
        await pool.parse(b"x", None, "a.txt")


async def test_cancelled_call_frees_its_worker() -> None:
    pool = ParserPool(1, LIMITS, bad_parsers.hang_parse)
    try:
        await pool.start()
        hung = asyncio.create_task(pool.parse(b"hang", None, "slow.txt"))
        async with asyncio.timeout(30):
            while not pool._busy:  # the call has taken the only worker
                await asyncio.sleep(0.01)
        hung.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hung
        assert (await pool.parse(b"next", None, "a.txt")).segments[0].text == "next"
    finally:
        await pool.close()


def test_settings_from_env() -> None:
    env = Env(
        "orchestrator",
        {
            "RAGMESH_ORCHESTRATOR_PARSE_MAX_BYTES": "1000",
            "RAGMESH_ORCHESTRATOR_PARSE_MAX_PAGES": "5",
            "RAGMESH_ORCHESTRATOR_PARSE_TIMEOUT_SECONDS": "1.5",
            "RAGMESH_ORCHESTRATOR_PARSE_MEMORY_MB": "256",
            "RAGMESH_ORCHESTRATOR_PARSE_WORKERS": "3",
        },
    )
    settings = ParseSettings.from_env(env)
    assert settings.workers == 3
    assert (settings.limits.max_bytes, settings.limits.max_pages) == (1000, 5)
    assert (settings.limits.time_seconds, settings.limits.memory_mb) == (1.5, 256)
    assert ParseSettings.from_env(Env("orchestrator", {})) == ParseSettings()
    with pytest.raises(ValueError, match="RAGMESH_ORCHESTRATOR_PARSE_WORKERS"):
        ParseSettings.from_env(Env("orchestrator", {"RAGMESH_ORCHESTRATOR_PARSE_WORKERS": "0"}))
