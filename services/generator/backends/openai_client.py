"""A small client of an OpenAI-compatible server (vLLM, TGI, NIM, llama.cpp's server, a hosted API).

It streams ``POST <url>/chat/completions`` as server-sent events and maps what goes wrong
to the mesh's domain errors: a refused connection or a server that disappears in the
middle of a stream is UNAVAILABLE at once (httpx sees the closed socket), a 400/422 is
INVALID_ARGUMENT with the server's own message, a 429 is RESOURCE_EXHAUSTED. Closing the
stream (leaving ``async with``) closes the HTTP response, which is how the remote learns
that the caller went away.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from services.common.errors import InvalidArgument, Overloaded, RagmeshError, Unavailable
from services.generator.config import OpenAISettings

#: Seconds to wait for the next chunk of a stream that went quiet (a hung remote).
READ_TIMEOUT = 60.0
# httpx logs every request at INFO: a health poll every few seconds would flood the log.
logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Chunk:
    """One streamed piece: new text, a finish reason, and usage when the server reports it."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class RemoteModel:
    """What ``GET <url>/models`` says about the served model."""

    name: str
    #: vLLM's ``max_model_len`` or llama.cpp's ``meta.n_ctx_train``; 0 when not reported.
    context_length: int


class OpenAIClient:
    """Chat completions streamed from one OpenAI-compatible server."""

    def __init__(self, settings: OpenAISettings) -> None:
        self.settings = settings
        headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        timeout = httpx.Timeout(settings.connect_timeout_seconds, read=READ_TIMEOUT)
        self._http = httpx.AsyncClient(base_url=settings.url, headers=headers, timeout=timeout)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def healthy(self) -> bool:
        """Whether the health URL answers 200 within the connect timeout."""
        try:
            response = await self._http.get(self.settings.health_url, timeout=self.settings.connect_timeout_seconds)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def model(self) -> RemoteModel:
        """The served model; Unavailable when the server does not answer."""
        try:
            response = await self._http.get("/models", timeout=self.settings.connect_timeout_seconds)
        except httpx.HTTPError as error:
            raise Unavailable(f"the generation server at {self.settings.url} does not answer: {error!r}") from None
        _raise_for_status(response.status_code, response.text)
        models = response.json().get("data") or [{}]
        wanted = [m for m in models if m.get("id") == self.settings.model] or models
        first = wanted[0]
        window = first.get("max_model_len") or (first.get("meta") or {}).get("n_ctx_train") or 0
        return RemoteModel(str(first.get("id", self.settings.model)), int(window))

    @contextlib.asynccontextmanager
    async def chat(self, body: dict[str, Any]) -> AsyncIterator[AsyncIterator[Chunk]]:
        """Open a streamed chat completion; yields its chunks; errors as domain errors."""
        request = self._http.build_request("POST", "/chat/completions", json={**body, "stream": True})
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as error:
            raise _transport_error(self.settings.url, error) from None
        try:
            if response.status_code != 200:
                await response.aread()
                _raise_for_status(response.status_code, response.text)
            yield _chunks(response, self.settings.url)
        finally:
            await response.aclose()


async def _chunks(response: httpx.Response, url: str) -> AsyncIterator[Chunk]:
    """Parse ``data:`` lines of a server-sent event stream into chunks until ``[DONE]``."""
    try:
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            yield _chunk(json.loads(data))
    except httpx.HTTPError as error:
        raise _transport_error(url, error) from None
    raise Unavailable(f"the generation server at {url} ended the stream without [DONE]; retry")


def _chunk(event: dict[str, Any]) -> Chunk:
    if "error" in event:  # some servers report a failure inside the stream
        raise Unavailable(f"the generation server failed mid-stream: {event['error']}")
    usage = event.get("usage") or {}
    choices = event.get("choices") or [{}]
    choice = choices[0]
    delta = choice.get("delta") or {}
    return Chunk(
        text=str(delta.get("content") or ""),
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
    )


def _transport_error(url: str, error: httpx.HTTPError) -> RagmeshError:
    if isinstance(error, httpx.TimeoutException):
        return Unavailable(f"the generation server at {url} timed out ({type(error).__name__}); retry")
    return Unavailable(f"the generation server at {url} is unreachable or went away ({error!r}); retry")


def _raise_for_status(status: int, text: str) -> None:
    """Map an HTTP error status of the remote to a domain error carrying its message."""
    if status < 400:
        return
    message = _error_message(text)
    if status in (400, 404, 413, 422):
        raise InvalidArgument(f"the generation server rejected the request ({status}): {message}")
    if status == 429:
        raise Overloaded(f"the generation server is overloaded (429): {message}; retry later")
    raise Unavailable(f"the generation server answered {status}: {message}")


def _error_message(text: str) -> str:
    """The ``error.message`` of an OpenAI-style error body, else the body itself (shortened)."""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        body = json.loads(text)
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("detail") or error)[:500]
        return str(body.get("detail") or error)[:500]
    return text[:500]
