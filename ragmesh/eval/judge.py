"""LLM-judged answer scores: accuracy, relevance and completeness 1-5 with a reason.

The judge is the mesh's generator (``GeneratorService/GenerateText`` at a gRPC address)
or any OpenAI-compatible server (``POST {url}/v1/chat/completions``), so a stronger
model can judge a small one. Replies are parsed robustly: the first JSON object in the
text is read; an invalid reply is retried once with a stricter instruction, then counted
as unparsed. ``check`` is called before the first verdict: a judge that cannot be reached
stops the evaluation with the reason, rather than turning every verdict into a failure. A call
that fails later is counted apart (``judge_failed``), never as an unparsed reply.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import grpc
import httpx

from ragmesh.v1 import common_pb2, generator_pb2, generator_pb2_grpc
from ragmesh.vocabulary.tls import ClientTls, TlsFileError

CRITERIA = ("accuracy", "relevance", "completeness")
SYSTEM = (
    "You grade answers of a question-answering system. Reply with one JSON object only: "
    '{"accuracy": 1-5, "relevance": 1-5, "completeness": 1-5, "reason": "one sentence"}.'
)
STRICTER = (
    "Your previous reply was not valid. Reply with exactly one JSON object and nothing else, "
    'for example {"accuracy": 4, "relevance": 5, "completeness": 3, "reason": "mostly correct"}.'
)
Message = tuple[str, str]  # (role, content)
#: Seconds the reachability check of a judge may take.
CHECK_TIMEOUT_SECONDS = 15.0


class JudgeUnreachable(RuntimeError):
    """The judge cannot be reached (or refuses us): the message says where and why."""


class JudgeBackend(Protocol):
    """Completes a chat; raises on transport errors."""

    async def complete(self, messages: Sequence[Message]) -> str:
        """The model's reply to ``messages``."""
        ...


@dataclass(frozen=True)
class Verdict:
    """A judge's scores, or why there are none (``scores`` empty when unparsed)."""

    scores: dict[str, int]
    reason: str
    attempts: int
    error: str = ""
    #: The call itself failed (no reply to parse).
    failed: bool = False

    @property
    def parsed(self) -> bool:
        """Whether the judge gave usable scores."""
        return bool(self.scores)


def parse_verdict(reply: str) -> tuple[dict[str, int], str] | None:
    """Scores and reason from the first JSON object of ``reply`` that has every criterion
    as an integer 1-5; None when there is none."""
    decoder = json.JSONDecoder()
    position = reply.find("{")
    while position != -1:
        try:
            value, _ = decoder.raw_decode(reply, position)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict) and (scores := _scores(value)) is not None:
            return scores, str(value.get("reason", ""))[:500]
        position = reply.find("{", position + 1)
    return None


def _scores(value: dict[str, Any]) -> dict[str, int] | None:
    scores: dict[str, int] = {}
    for name in CRITERIA:
        raw = value.get(name)
        if isinstance(raw, str) and raw.strip().isdigit():
            raw = int(raw.strip())
        if isinstance(raw, bool) or not isinstance(raw, int | float) or raw != int(raw) or not 1 <= raw <= 5:
            return None
        scores[name] = int(raw)
    return scores


def judge_prompt(question: str, answer: str, sources: Sequence[str], references: Sequence[str]) -> str:
    """The user message asking for a verdict."""
    context = "\n".join(f"[{n}] {text[:600]}" for n, text in enumerate(sources, start=1)) or "(none)"
    reference = "; ".join(references) or "(none given)"
    return (
        f"Question: {question}\nReference answer: {reference}\nSources:\n{context}\n\nAnswer to grade: {answer}\n\n"
        "accuracy: is the answer correct? relevance: does it address the question? "
        "completeness: does it cover what the question asks? Grade each 1 (worst) to 5 (best)."
    )


async def judge(
    backend: JudgeBackend, question: str, answer: str, sources: Sequence[str], references: Sequence[str]
) -> Verdict:
    """Ask ``backend`` for a verdict, retrying once with a stricter instruction."""
    messages: list[Message] = [("system", SYSTEM), ("user", judge_prompt(question, answer, sources, references))]
    reply = ""
    for attempt in (1, 2):
        try:
            reply = await backend.complete(messages)
        except (grpc.RpcError, httpx.HTTPError, ValueError) as error:
            return Verdict({}, "", attempt, f"judge call failed: {error}"[:300], failed=True)
        if (found := parse_verdict(reply)) is not None:
            return Verdict(found[0], found[1], attempt)
        messages = [*messages, ("assistant", reply[:2000]), ("user", STRICTER)]
    return Verdict({}, "", 2, f"unparsed reply: {reply[:200]!r}")


class GeneratorJudge:
    """The mesh's generator as a judge (greedy decoding), over gRPC."""

    ROLES: ClassVar[dict[str, common_pb2.Role.ValueType]] = {
        "system": common_pb2.ROLE_SYSTEM,
        "user": common_pb2.ROLE_USER,
        "assistant": common_pb2.ROLE_ASSISTANT,
    }

    def __init__(
        self, address: str, timeout: float = 300.0, max_new_tokens: int = 160, tls: ClientTls | None = None
    ) -> None:
        self.address = address
        try:
            self._channel = (
                grpc.aio.insecure_channel(address)
                if tls is None
                else grpc.aio.secure_channel(address, tls.credentials(), options=tls.options())
            )
        except TlsFileError as error:
            raise JudgeUnreachable(f"the judge at {address}: {error}") from None
        self._stub = generator_pb2_grpc.GeneratorServiceStub(self._channel)
        self._timeout = timeout
        self._max_new_tokens = max_new_tokens

    async def check(self) -> None:
        """The generator's Info, answered within CHECK_TIMEOUT_SECONDS."""
        try:
            await self._stub.Info(generator_pb2.GeneratorInfoRequest(), timeout=CHECK_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as error:
            hint = (
                " (Envoy's public listener routes the orchestrator only: give the internal listener or a generator)"
                if error.code() == grpc.StatusCode.UNIMPLEMENTED
                else ""
            )
            raise JudgeUnreachable(
                f"the judge (a generator) at {self.address} answered {error.code().name}: {error.details()}{hint}"
            ) from None

    async def complete(self, messages: Sequence[Message]) -> str:
        """GenerateText on the chat."""
        request = generator_pb2.GenerateRequest(
            messages=[common_pb2.ChatMessage(role=self.ROLES[role], content=text) for role, text in messages],
            sampling=common_pb2.SamplingParams(max_new_tokens=self._max_new_tokens, temperature=0.0),
        )
        response = await self._stub.GenerateText(request, timeout=self._timeout)
        return str(response.text)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close(None)


class OpenAIJudge:
    """Any OpenAI-compatible chat completions endpoint as a judge."""

    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout: float = 300.0,
        max_tokens: int = 160,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        base = url.rstrip("/")
        self.address = url
        self._url = base if base.endswith("/chat/completions") else f"{base.removesuffix('/v1')}/v1/chat/completions"
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(timeout=timeout, headers=headers, transport=transport)
        self._model = model
        self._max_tokens = max_tokens

    async def check(self) -> None:
        """``GET /v1/models`` answered: any reply but a refused key counts (some servers lack the route)."""
        url = self._url.removesuffix("/chat/completions") + "/models"
        try:
            response = await self._client.get(url, timeout=CHECK_TIMEOUT_SECONDS)
        except httpx.HTTPError as error:
            raise JudgeUnreachable(f"the judge at {url} cannot be reached: {error!r}") from None
        if response.status_code in (401, 403):
            raise JudgeUnreachable(
                f"the judge at {url} refused the key: HTTP {response.status_code} (RAGMESH_JUDGE_API_KEY)"
            )

    async def complete(self, messages: Sequence[Message]) -> str:
        """POST the chat; the first choice's content."""
        body = {
            "model": self._model,
            "temperature": 0,
            "max_tokens": self._max_tokens,
            "messages": [{"role": r, "content": c} for r, c in messages],
        }
        response = await self._client.post(self._url, json=body)
        response.raise_for_status()
        try:
            return str(response.json()["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError) as error:
            raise ValueError(f"unexpected chat completion body: {error!r}") from None

    async def close(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


def make_judge(
    target: str, model: str, api_key: str | None, max_tokens: int = 160, tls: ClientTls | None = None
) -> GeneratorJudge | OpenAIJudge:
    """An OpenAI-compatible judge for http(s) URLs, the generator at a gRPC address otherwise
    (over ``tls`` when given: Envoy's internal listener with mTLS behind Envoy)."""
    if target.startswith(("http://", "https://")):
        return OpenAIJudge(target, model, api_key, max_tokens=max_tokens)
    return GeneratorJudge(target, max_new_tokens=max_tokens, tls=tls)


def summarize(verdicts: Sequence[Verdict]) -> dict[str, float]:
    """Mean of each criterion over parsed verdicts; the shares of replies that could not be
    parsed and of calls that failed (two different problems: a weak judge, a broken link)."""
    parsed = [v for v in verdicts if v.parsed]
    failed = [v for v in verdicts if v.failed]
    summary = (
        {f"judge_{name}": sum(v.scores[name] for v in parsed) / len(parsed) for name in CRITERIA} if parsed else {}
    )
    count = len(verdicts)
    summary["judge_unparsed"] = (count - len(parsed) - len(failed)) / count if count else 0.0
    summary["judge_failed"] = len(failed) / count if count else 0.0
    return summary


__all__ = [
    "GeneratorJudge",
    "JudgeUnreachable",
    "OpenAIJudge",
    "Verdict",
    "judge",
    "make_judge",
    "parse_verdict",
    "summarize",
]
