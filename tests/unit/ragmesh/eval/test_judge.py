"""The judge's replies are parsed robustly: garbage is retried once, then counted unparsed; a
call that fails is counted apart; a judge that cannot be reached is said so before any verdict."""

from __future__ import annotations

import json
from collections.abc import Sequence

import grpc
import httpx
import pytest

from ragmesh.eval.judge import (
    STRICTER,
    GeneratorJudge,
    JudgeUnreachable,
    Message,
    OpenAIJudge,
    judge,
    parse_verdict,
    summarize,
)
from ragmesh.mesh.processes import free_port


class ScriptedJudge:
    """Answers each call with the next reply of its script and keeps the messages it got."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.calls: list[list[Message]] = []

    async def complete(self, messages: Sequence[Message]) -> str:
        self.calls.append(list(messages))
        return self.replies.pop(0)


GOOD = 'Sure! {"accuracy": 4, "relevance": "5", "completeness": 3, "reason": "close"} hope it helps'


def test_parse_finds_the_first_valid_object_in_prose() -> None:
    assert parse_verdict(GOOD) == ({"accuracy": 4, "relevance": 5, "completeness": 3}, "close")
    assert parse_verdict('{"a": 1} then {"accuracy": 1, "relevance": 2, "completeness": 5}') is not None


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "I think it is good.",
        '{"accuracy": 6, "relevance": 1, "completeness": 1}',
        '{"accuracy": 2}',
        "{broken",
        '{"accuracy": true, "relevance": 1, "completeness": 1}',
        '{"accuracy": 2.5, "relevance": 1, "completeness": 1}',
    ],
)
def test_parse_rejects_what_is_not_a_verdict(reply: str) -> None:
    assert parse_verdict(reply) is None


async def test_garbage_twice_is_counted_as_unparsed_after_one_stricter_retry() -> None:
    backend = ScriptedJudge("no idea", "still {not json")
    verdict = await judge(backend, "q?", "a.", ["source"], ["ref"])
    assert not verdict.parsed and verdict.attempts == 2 and "unparsed" in verdict.error
    assert len(backend.calls) == 2 and backend.calls[1][-1] == ("user", STRICTER)


async def test_a_valid_retry_is_used() -> None:
    verdict = await judge(ScriptedJudge("hmm", GOOD), "q?", "a.", [], [])
    assert verdict.parsed and verdict.attempts == 2 and verdict.scores["relevance"] == 5


async def test_a_failing_judge_is_counted_not_raised() -> None:
    class Broken:
        async def complete(self, messages: Sequence[Message]) -> str:
            raise ValueError("unexpected chat completion body")

    verdict = await judge(Broken(), "q?", "a.", [], [])
    assert not verdict.parsed and "judge call failed" in verdict.error


async def test_summary_means_over_parsed_and_share_unparsed() -> None:
    verdicts = [
        await judge(ScriptedJudge(GOOD), "q", "a", [], []),
        await judge(ScriptedJudge('{"accuracy": 2, "relevance": 3, "completeness": 1}'), "q", "a", [], []),
        await judge(ScriptedJudge("x", "y"), "q", "a", [], []),
    ]
    summary = summarize(verdicts)
    assert summary["judge_accuracy"] == pytest.approx(3.0) and summary["judge_completeness"] == pytest.approx(2.0)
    assert summary["judge_unparsed"] == pytest.approx(1 / 3)


async def test_openai_judge_posts_a_chat_completion_and_reads_the_first_choice() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"choices": [{"message": {"content": GOOD}}]})

    backend = OpenAIJudge("http://judge:8000/v1", "big-model", api_key="k", transport=httpx.MockTransport(answer))
    verdict = await judge(backend, "q?", "a.", ["s"], [])
    await backend.close()
    assert verdict.parsed and str(seen[0].url) == "http://judge:8000/v1/chat/completions"
    body = json.loads(seen[0].content)
    assert body["model"] == "big-model" and body["messages"][0]["role"] == "system" and body["temperature"] == 0
    assert seen[0].headers["authorization"] == "Bearer k"


async def test_openai_judge_errors_are_counted_not_raised() -> None:
    backend = OpenAIJudge("http://judge:8000", "m", transport=httpx.MockTransport(lambda r: httpx.Response(503)))
    verdict = await judge(backend, "q?", "a.", [], [])
    await backend.close()
    assert not verdict.parsed and "judge call failed" in verdict.error


async def test_failed_calls_are_counted_apart_from_unparsed_replies() -> None:
    class Down:
        async def complete(self, messages: Sequence[Message]) -> str:
            raise httpx.ConnectError("connection refused")

    verdicts = [
        await judge(ScriptedJudge(GOOD), "q", "a", [], []),
        await judge(ScriptedJudge("x", "y"), "q", "a", [], []),
        await judge(Down(), "q", "a", [], []),
        await judge(Down(), "q", "a", [], []),
    ]
    assert [v.failed for v in verdicts] == [False, False, True, True]
    summary = summarize(verdicts)
    assert summary["judge_unparsed"] == pytest.approx(1 / 4) and summary["judge_failed"] == pytest.approx(2 / 4)


@pytest.mark.parametrize(("status", "reachable"), [(200, True), (404, True), (401, False), (403, False)])
async def test_openai_judge_check_refuses_only_a_refused_key(status: int, reachable: bool) -> None:
    backend = OpenAIJudge("http://judge:8000/v1", "m", transport=httpx.MockTransport(lambda r: httpx.Response(status)))
    try:
        if reachable:
            await backend.check()
        else:
            with pytest.raises(JudgeUnreachable, match="refused the key"):
                await backend.check()
    finally:
        await backend.close()


async def test_openai_judge_check_says_where_it_could_not_connect() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    backend = OpenAIJudge("http://judge:8000", "m", transport=httpx.MockTransport(refuse))
    with pytest.raises(JudgeUnreachable, match=r"http://judge:8000/v1/models cannot be reached"):
        await backend.check()
    await backend.close()


async def test_generator_judge_check_names_the_address_and_the_public_listener() -> None:
    server = grpc.aio.server()  # answers every call UNIMPLEMENTED, like Envoy's public listener for a generator
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        for address, expected in ((f"127.0.0.1:{port}", "public listener routes the orchestrator only"),
                                  (f"127.0.0.1:{free_port()}", "UNAVAILABLE")):  # fmt: skip
            backend = GeneratorJudge(address)
            with pytest.raises(JudgeUnreachable, match=expected) as found:
                await backend.check()
            assert address in str(found.value)
            await backend.close()
    finally:
        await server.stop(0)
