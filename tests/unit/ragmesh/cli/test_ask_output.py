"""What ``ragmesh ask`` prints: the answer once — the orchestrator's cited version when the
model cited nothing — its numbered sources, and whether it was cached ("not cached", not
"none cache")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ragmesh.cli.query import stream_answer
from ragmesh.client.types import DoneEvent, Source, SourcesEvent, StreamEvent, TokenEvent, Usage
from ragmesh.vocabulary import CacheLevel, FinishReason

SOURCE = Source(1, "c1", "envoy.md", "Envoy listens on port 8080.", {"source": "docs/envoy.md"}, 0.9)


class ScriptedClient:
    """Streams the events it was given."""

    def __init__(self, events: list[StreamEvent]) -> None:
        self.events = events

    def query_stream(self, *args: Any, **options: Any) -> Iterator[StreamEvent]:
        yield from self.events


def _events(cache: CacheLevel, cited: str) -> list[StreamEvent]:
    done = DoneEvent(Usage(10, 5), {"total": 12.0}, FinishReason.EOS, cited_answer=cited)
    return [SourcesEvent([SOURCE], cache, "abc123"), TokenEvent("Envoy listens "), TokenEvent("on 8080."), done]


def test_an_answer_the_orchestrator_cited_is_printed_once(capsys: pytest.CaptureFixture[str]) -> None:
    stream_answer(ScriptedClient(_events(CacheLevel.NONE, "Envoy listens on 8080 [1].")), "q", "docs")  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert out.count("Envoy listens on 8080") == 1 and "Envoy listens on 8080 [1]." in out
    assert "with citations" not in out
    assert "[1] envoy.md" in out
    assert "(not cached, trace abc123)" in out and "none cache" not in out


def test_a_cached_answer_says_which_cache(capsys: pytest.CaptureFixture[str]) -> None:
    stream_answer(ScriptedClient(_events(CacheLevel.L1, "")), "q", "docs")  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert out.count("Envoy listens on 8080.") == 1
    assert "(from the L1 cache, trace abc123)" in out
