"""A tool's JSON arguments into domain values, checked: a wrong one is a :class:`BadParam`
naming it (the tool error says which argument and why), never a crash of the session."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ragmesh.vocabulary import Role, SearchMode, choice
from ragmesh.vocabulary.limits import MAX_TOP_K
from services.orchestrator.core.domain import Document, QueryInput, Sampling, Turn
from services.orchestrator.transport.http.openai_schema import BadParam, parse_filters
from services.orchestrator.transport.mcp.tools import MAX_HISTORY_TURNS, MAX_INGEST_DOCUMENTS

_KINDS = {str: "a string", int: "an integer", list: "an array", dict: "an object"}


class Arguments:
    """The arguments of one call, read by name with their expected type."""

    def __init__(self, raw: Mapping[str, Any] | None, known: frozenset[str]) -> None:
        self.raw = dict(raw or {})
        unknown = sorted(set(self.raw) - known)
        if unknown:
            raise BadParam(unknown[0], f"unknown argument; this tool takes {', '.join(sorted(known)) or 'none'}")

    def get(self, name: str, kind: type, default: Any = None) -> Any:
        """The argument ``name`` (``default`` when absent or null); BadParam when of another type."""
        value = self.raw.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, kind):
            raise BadParam(name, f"expected {_KINDS[kind]}, got {_json_kind(value)}")
        return value

    def text(self, name: str, required: bool = False) -> str:
        """A string argument; with ``required``, BadParam when missing or blank."""
        value: str = self.get(name, str, "")
        if required and not value.strip():
            raise BadParam(name, "is required and must not be empty")
        return value

    def bounded(self, name: str, low: int, high: int) -> int:
        """An integer argument in [low, high] (0 when absent)."""
        value: int = self.get(name, int, 0)
        if name in self.raw and self.raw[name] is not None and not low <= value <= high:
            raise BadParam(name, f"must be between {low} and {high}, got {value}")
        return value


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float) and not math.isfinite(value):
        return "a non-finite number"
    names = {int: "an integer", float: "a number", str: "a string", list: "an array", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def _search_mode(args: Arguments) -> SearchMode:
    value = args.text("search_mode")
    if not value:
        return SearchMode.AUTO
    try:
        return choice(SearchMode, "search_mode", value)
    except ValueError as error:
        raise BadParam("search_mode", str(error).removeprefix("search_mode ")) from None


def _conversation(args: Arguments) -> list[Turn]:
    turns = []
    raw: list[Any] = args.get("conversation", list, [])
    if len(raw) > MAX_HISTORY_TURNS:
        raise BadParam("conversation", f"holds {len(raw)} turns; the limit is {MAX_HISTORY_TURNS}")
    for index, turn in enumerate(raw):
        name = f"conversation[{index}]"
        if not isinstance(turn, Mapping):
            raise BadParam(name, "must be an object with role and content")
        if turn.get("role") not in (Role.USER.value, Role.ASSISTANT.value):
            raise BadParam(f"{name}.role", f"must be user or assistant, got {turn.get('role')!r}")
        if not isinstance(turn.get("content"), str) or not turn["content"].strip():
            raise BadParam(f"{name}.content", "must be a non-empty string")
        turns.append(Turn(Role(turn["role"]), turn["content"]))
    return turns


SEARCH_ARGS = frozenset({"query", "collection", "top_k", "filters", "search_mode"})
ASK_ARGS = frozenset({"question", "collection", "top_k", "filters", "search_mode", "conversation", "max_tokens"})


def search_input(raw: Mapping[str, Any] | None, caller_id: str) -> QueryInput:
    """``search``: a retrieval-only query."""
    args = Arguments(raw, SEARCH_ARGS)
    return QueryInput(
        query=args.text("query", required=True),
        collection=args.text("collection"),
        top_k=args.bounded("top_k", 1, MAX_TOP_K),
        filters=parse_filters(args.raw.get("filters")),
        search_mode=_search_mode(args),
        retrieval_only=True,
        caller_id=caller_id,
    )


def ask_input(raw: Mapping[str, Any] | None, caller_id: str) -> QueryInput:
    """``ask``: a question, with the conversation before it."""
    args = Arguments(raw, ASK_ARGS)
    max_tokens = args.bounded("max_tokens", 1, 4096)
    return QueryInput(
        query=args.text("question", required=True),
        collection=args.text("collection"),
        top_k=args.bounded("top_k", 1, MAX_TOP_K),
        filters=parse_filters(args.raw.get("filters")),
        history=_conversation(args),
        search_mode=_search_mode(args),
        sampling=Sampling(max_new_tokens=max_tokens or None),
        caller_id=caller_id,
    )


def document_ref(raw: Mapping[str, Any] | None) -> tuple[str, str]:
    """``get_document``: (collection, document id)."""
    args = Arguments(raw, frozenset({"collection", "document_id"}))
    return args.text("collection", required=True), args.text("document_id", required=True)


def ingest_documents(raw: Mapping[str, Any] | None) -> tuple[str, tuple[Document, ...]]:
    """``ingest_text``: (collection, documents)."""
    args = Arguments(raw, frozenset({"collection", "documents"}))
    collection = args.text("collection", required=True)
    items: list[Any] = args.get("documents", list, [])
    if not 1 <= len(items) <= MAX_INGEST_DOCUMENTS:
        raise BadParam("documents", f"must hold 1 to {MAX_INGEST_DOCUMENTS} documents, got {len(items)}")
    documents = []
    for index, item in enumerate(items):
        name = f"documents[{index}]"
        if not isinstance(item, Mapping):
            raise BadParam(name, "must be an object with id, text and optional metadata")
        for field in ("id", "text"):
            if not isinstance(item.get(field), str) or not item[field].strip():
                raise BadParam(f"{name}.{field}", "must be a non-empty string")
        metadata = item.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise BadParam(f"{name}.metadata", f"expected an object, got {_json_kind(metadata)}")
        documents.append(Document(item["id"], item["text"], dict(metadata)))
    return collection, tuple(documents)


def job_id(raw: Mapping[str, Any] | None) -> str:
    """``get_job``: the job id."""
    return Arguments(raw, frozenset({"job_id"})).text("job_id", required=True)


def no_arguments(raw: Mapping[str, Any] | None) -> None:
    """``list_collections`` takes none."""
    Arguments(raw, frozenset())
