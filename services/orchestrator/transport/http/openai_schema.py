"""The OpenAI-compatible API's requests parsed into domain inputs, every problem an
InvalidArgument naming its ``param`` (the responses: openai_responses.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ragmesh.vocabulary import (
    ContextMode,
    ConversationQuery,
    FilterOp,
    RerankMethod,
    Role,
    SearchMode,
    choice,
)
from services.common import errors
from services.orchestrator.core.domain import Filter, QueryInput, Sampling, Turn
from services.orchestrator.transport.http.openai_responses import MODEL_ID

MAX_EMBEDDING_INPUTS = 512


class BadParam(errors.InvalidArgument):
    """An invalid request field; ``param`` names it the way OpenAI's errors do."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


@dataclass(frozen=True)
class ChatRequest:
    """A chat completion request, parsed."""

    query: QueryInput
    stream: bool
    include_usage: bool


def _get(body: Mapping[str, Any], name: str, kinds: type | tuple[type, ...], default: Any = None) -> Any:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise BadParam(name, f"expected {_kind_names(kinds)}, got a boolean")
    if not isinstance(value, kinds):
        raise BadParam(name, f"expected {_kind_names(kinds)}, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadParam(name, "must be a finite number")
    return value


def _kind_names(kinds: type | tuple[type, ...]) -> str:
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "a boolean",
        list: "an array",
        dict: "an object",
    }
    return " or ".join(names.get(k, k.__name__) for k in (kinds if isinstance(kinds, tuple) else (kinds,)))


def _content(message: Mapping[str, Any], index: int) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts: only text ones are supported
        parts = []
        for part in content:
            if not isinstance(part, Mapping) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise BadParam(f"messages[{index}].content", "only text content parts are supported")
            parts.append(part["text"])
        content = "".join(parts)
    if not isinstance(content, str) or not content.strip():
        raise BadParam(f"messages[{index}].content", "must be a non-empty string")
    return content


def _conversation(body: Mapping[str, Any]) -> tuple[str, list[Turn]]:
    """The question (the last user message) and the turns before it; system messages are
    left to the pipeline's own grounded system prompt."""
    messages = _get(body, "messages", list)
    if not messages:
        raise BadParam("messages", "must hold at least one message")
    turns: list[Turn] = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise BadParam(f"messages[{index}]", "must be an object with role and content")
        role = message.get("role")
        if role not in ("system", "developer", "user", "assistant"):
            raise BadParam(f"messages[{index}].role", f"must be system, user or assistant, got {role!r}")
        content = _content(message, index)
        if role in ("user", "assistant"):
            turns.append(Turn(Role(role), content))
    if not turns or turns[-1].role != Role.USER:
        raise BadParam("messages", "the last message must be the user's question")
    return turns[-1].content, turns[:-1]


def _scalar(value: Any, param: str) -> str | int | float | bool:
    if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    raise BadParam(param, "must be a string, a finite number or a boolean")


def parse_filters(raw: Any) -> list[Filter]:
    """Structured clauses from JSON: ``{"field", "op", "value"}`` or ``{"field", "op": "in", "values"}``."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadParam("filters", "must be an array of {field, op, value} objects")
    clauses = []
    for index, item in enumerate(raw):
        param = f"filters[{index}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("field"), str):
            raise BadParam(param, "must be an object with a string field, an op and a value (or values)")
        try:
            op = FilterOp.parse(str(item.get("op", "")))
        except ValueError as error:
            raise BadParam(f"{param}.op", str(error)) from None
        value = _scalar(item["value"], f"{param}.value") if "value" in item else None
        values = item.get("values", [])
        if not isinstance(values, list):
            raise BadParam(f"{param}.values", "must be an array")
        clauses.append(Filter(item["field"], op, value, tuple(_scalar(v, f"{param}.values") for v in values)))
    return clauses


def _sampling(body: Mapping[str, Any]) -> Sampling:
    if _get(body, "n", int, 1) != 1:
        raise BadParam("n", "only n=1 is supported")
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop or []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise BadParam("stop", "must be a string or an array of strings")
    return Sampling(
        max_new_tokens=_get(body, "max_completion_tokens", int) or _get(body, "max_tokens", int),
        temperature=_get(body, "temperature", (int, float)),
        top_p=_get(body, "top_p", (int, float)),
        seed=_get(body, "seed", int),
        stop=tuple(stops),
    )


def _enum_field(body: Mapping[str, Any], name: str, enum: Any) -> Any:
    value = _get(body, name, str)
    if value is None:
        return None
    try:
        return choice(enum, name, value)
    except ValueError as error:
        raise BadParam(name, str(error)) from None


def parse_chat(body: Any, caller_id: str = "") -> ChatRequest:
    """A ChatRequest from the JSON body of ``POST /v1/chat/completions``."""
    if not isinstance(body, Mapping):
        raise BadParam("body", "must be a JSON object")
    model = _get(body, "model", str, MODEL_ID)
    if model != MODEL_ID:
        raise errors.NotFound(f"model {model!r} does not exist; GET /v1/models lists {MODEL_ID!r}")
    question, history = _conversation(body)
    options = _get(body, "stream_options", dict, {})
    query = QueryInput(
        query=question,
        collection=_get(body, "collection", str, ""),
        top_k=_get(body, "top_k", int, 0),
        filters=parse_filters(body.get("filters")),
        history=history,
        rerank=_enum_field(body, "rerank", RerankMethod),
        candidates=_get(body, "candidates", int, 0),
        sampling=_sampling(body),
        search_mode=_enum_field(body, "search_mode", SearchMode) or SearchMode.AUTO,
        conversation_query=_enum_field(body, "conversation_query", ConversationQuery),
        context=_enum_field(body, "context", ContextMode),
        bypass_cache=_get(body, "bypass_cache", bool, False),
        caller_id=_get(body, "user", str, "") or caller_id,
    )
    return ChatRequest(query, _get(body, "stream", bool, False), bool(options.get("include_usage")))


def parse_embeddings(body: Any) -> tuple[list[str], bool, bool]:
    """(texts, as base64, as queries) from the body of ``POST /v1/embeddings``."""
    if not isinstance(body, Mapping):
        raise BadParam("body", "must be a JSON object")
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise BadParam("input", "must be a non-empty string or a non-empty array of non-empty strings")
    if len(texts) > MAX_EMBEDDING_INPUTS:
        raise BadParam("input", f"{len(texts)} inputs; the limit is {MAX_EMBEDDING_INPUTS}")
    encoding = _get(body, "encoding_format", str, "float")
    if encoding not in ("float", "base64"):
        raise BadParam("encoding_format", "must be float or base64")
    kind = _get(body, "input_type", str, "document")
    if kind not in ("query", "document"):
        raise BadParam("input_type", "must be query or document")
    return texts, encoding == "base64", kind == "query"
