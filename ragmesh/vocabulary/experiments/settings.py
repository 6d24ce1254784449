"""What a variant may change about a query, and the checks on each value.

A variant's settings are all optional: an unset field leaves the query as the request and
the server defaults made it. :data:`SETTING_CHECKS` is the one list of known settings, so
the config loader rejects anything else by name.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from ragmesh.vocabulary import ContextMode, RerankMethod, SearchMode
from ragmesh.vocabulary.limits import MAX_CANDIDATES, MAX_TOP_K
from ragmesh.vocabulary.names import IDENTIFIER

RERANK_METHODS = tuple(method.value for method in RerankMethod)
#: A variant names a mode; "auto" is what the retriever does when none is named.
SEARCH_MODES = tuple(mode.value for mode in SearchMode if mode is not SearchMode.AUTO)
#: Same bounds as the orchestrator's request checks and env defaults.
PROMPT_FIELDS = frozenset({"sources", "question"})
MAX_TEMPLATE_CHARS = 4000


@dataclass(frozen=True)
class VariantSettings:
    """Overrides one variant applies to a query (None = leave the query as it is)."""

    #: The collection searched (a chunking variant reads its own collection).
    collection: str | None = None
    #: How ``ragmesh ingest`` chunks this variant's collection (see :func:`config.ingest_targets`).
    chunk_tokens: int | None = None
    overlap_tokens: int | None = None
    rerank: str | None = None
    mmr_lambda: float | None = None
    search_mode: str | None = None
    #: What of each chunk the model reads: "chunks" or "sentences".
    context: str | None = None
    top_k: int | None = None
    candidates: int | None = None
    #: The user-turn template text (a named template is resolved when the file is loaded);
    #: it holds exactly the placeholders ``{sources}`` and ``{question}``.
    prompt_template: str | None = None
    #: The name the template had in the file ("inline" for an inline one), for display.
    prompt_template_name: str | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None

    def query_overrides(self) -> dict[str, Any]:
        """The set query fields (collection, top_k, candidates, rerank, mmr_lambda,
        search_mode, context), named as in the orchestrator's query spec."""
        names = ("collection", "top_k", "candidates", "rerank", "mmr_lambda", "search_mode", "context")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def sampling_overrides(self) -> dict[str, Any]:
        """The set generation parameters, named as in ``SamplingParams``."""
        names = ("max_new_tokens", "temperature", "top_p", "seed")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def describe(self) -> dict[str, Any]:
        """The set fields (the template by name), for reports and logs."""
        shown = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        shown.pop("prompt_template", None)
        return shown


def render_prompt(template: str, sources: str, question: str) -> str:
    """The user turn from a validated template (values are not re-parsed, so braces in a
    source's text are safe)."""
    return template.format(sources=sources, question=question)


def template_problem(template: str) -> str | None:
    """Why ``template`` is not a usable prompt template, or None when it is."""
    if len(template) > MAX_TEMPLATE_CHARS:
        return f"is {len(template)} characters long; the limit is {MAX_TEMPLATE_CHARS}"
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        return f"is not a valid template ({error}); write literal braces as {{{{ and }}}}"
    found = [name for _text, name, _spec, _conv in parsed if name is not None]
    unknown = sorted({name for name in found if name not in PROMPT_FIELDS})
    if unknown:
        return f"has unknown placeholders {unknown}; only {{sources}} and {{question}} are filled"
    if any(spec or conv for _text, name, spec, conv in parsed if name is not None):
        return "may not use format specs or conversions in its placeholders"
    missing = sorted(PROMPT_FIELDS - set(found))
    if missing:
        return f"lacks the placeholders {', '.join('{' + m + '}' for m in missing)}"
    return None


def _integer(minimum: int, maximum: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, got {value!r}"
        if not minimum <= value <= maximum:
            return f"must be between {minimum} and {maximum}, got {value}"
        return None

    return check


def _number(minimum: float, maximum: float, *, open_low: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, got {value!r}"
        low_ok = value > minimum if open_low else value >= minimum
        if not low_ok or value > maximum:
            bound = "above" if open_low else "at least"
            return f"must be {bound} {minimum} and at most {maximum}, got {value}"
        return None

    return check


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}, got {value!r}"

    return check


def _collection(value: Any) -> str | None:
    if isinstance(value, str) and IDENTIFIER.fullmatch(value):
        return None
    return f"must be 1-64 letters, digits or underscores starting with a letter, got {value!r}"


def _template(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else f"must be a template name or text, got {value!r}"


#: Every setting a variant may set, with the check of its value (None = valid).
SETTING_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "collection": _collection,
    "chunk_tokens": _integer(16, 8192),
    "overlap_tokens": _integer(0, 8191),
    "rerank": _choice(RERANK_METHODS),
    "mmr_lambda": _number(0.0, 1.0),
    "search_mode": _choice(SEARCH_MODES),
    "context": _choice(tuple(mode.value for mode in ContextMode)),
    "top_k": _integer(1, MAX_TOP_K),
    "candidates": _integer(1, MAX_CANDIDATES),
    "prompt_template": _template,
    "max_new_tokens": _integer(1, 8192),
    "temperature": _number(0.0, 2.0),
    "top_p": _number(0.0, 1.0, open_low=True),
    "seed": _integer(0, 2**63 - 1),
}
