"""The sources file (``RAGMESH_ORCHESTRATOR_SOURCES_FILE``, TOML): a ``[[sources]]`` table per
source, checked whole at start. Every error names the file, the source and the field.
Credentials are never fields: S3 takes them from the environment or a mounted file."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragmesh.vocabulary.access import AccessError, access_list
from ragmesh.vocabulary.names import IDENTIFIER
from services.orchestrator.core.sources.model import SourceKind, SourceSpec

COMMON = {"name", "kind", "collection", "every", "include", "exclude", "access", "max_delete_share"}
FIELDS = {
    SourceKind.FOLDER: {"path"},
    SourceKind.GIT: {"repository", "branch", "subpath"},
    SourceKind.S3: {"bucket", "prefix", "endpoint_url", "region"},
    SourceKind.WEB: {"url", "allow_prefix", "max_pages", "max_depth"},
}
REQUIRED = {SourceKind.FOLDER: "path", SourceKind.GIT: "repository", SourceKind.S3: "bucket", SourceKind.WEB: "url"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d)")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
MIN_EVERY_SECONDS = 1.0


class SourcesConfigError(ValueError):
    """The sources file cannot be used; the message names the file, the source and the field."""


@dataclass(frozen=True)
class SourceSettings:
    """Where the sources file is and how syncs run."""

    #: The sources file ("" = no sources).
    file: str = ""
    #: Where readers keep their working copies (git mirrors, web validators).
    cache_dir: str = ""
    #: A sync holds its source's lock at most this long (a dead worker's lock then expires).
    lock_seconds: float = 3600.0

    def load(self) -> dict[str, SourceSpec]:
        """The sources by name ({} without a file); SourcesConfigError when it is wrong."""
        return load_sources(self.file) if self.file else {}


def parse_duration(text: Any) -> float:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"1d"`` (or a number of seconds) in seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool) and text > 0:
        return float(text)
    match = _DURATION.fullmatch(str(text).strip())
    if match is None:
        raise ValueError(f"expected a duration such as '90s', '15m', '1h' or '1d', got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def load_sources(path: str) -> dict[str, SourceSpec]:
    """Every source of the file at ``path``, by name."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise SourcesConfigError(f"{path}: cannot read it ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise SourcesConfigError(f"{path}: not valid TOML: {error}") from None
    tables = data.get("sources", [])
    if not isinstance(tables, list) or set(data) - {"sources"}:
        raise SourcesConfigError(f"{path}: expected only [[sources]] tables")
    specs: dict[str, SourceSpec] = {}
    for index, table in enumerate(tables):
        spec = _source(path, index, table)
        if spec.name in specs:
            raise SourcesConfigError(f"{path}: source {spec.name!r}: name: declared twice")
        specs[spec.name] = spec
    return specs


def _source(path: str, index: int, table: Any) -> SourceSpec:
    name = table.get("name") if isinstance(table, dict) else None
    where = f"{path}: source {name!r}" if isinstance(name, str) else f"{path}: sources[{index}]"

    def fail(field: str, problem: str) -> SourcesConfigError:
        return SourcesConfigError(f"{where}: {field}: {problem}")

    if not isinstance(table, dict):
        raise SourcesConfigError(f"{where}: expected a table")
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
        raise fail("name", "use 1-64 letters, digits or underscores, starting with a letter")
    try:
        kind = SourceKind(str(table.get("kind")))
    except ValueError:
        raise fail("kind", f"one of {', '.join(k.value for k in SourceKind)}") from None
    unknown = set(table) - COMMON - FIELDS[kind]
    if unknown:
        raise fail(sorted(unknown)[0], f"unknown for a {kind.value} source (credentials never go in this file)")
    if not table.get(REQUIRED[kind]):
        raise fail(REQUIRED[kind], f"required for a {kind.value} source")
    return SourceSpec(name=name, kind=kind, **_common(table, fail), **_specific(kind, table, fail))


def _common(table: dict[str, Any], fail: Any) -> dict[str, Any]:
    collection = table.get("collection")
    if not isinstance(collection, str) or not IDENTIFIER.fullmatch(collection):
        raise fail("collection", "required: 1-64 letters, digits or underscores, starting with a letter")
    every = 0.0
    if "every" in table:
        try:
            every = parse_duration(table["every"])
        except ValueError as error:
            raise fail("every", str(error)) from None
        if every < MIN_EVERY_SECONDS:
            raise fail("every", f"at least {MIN_EVERY_SECONDS:.0f}s")
    share = table.get("max_delete_share", 0.5)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0.0 <= share <= 1.0:
        raise fail("max_delete_share", "a number from 0 to 1 (the share of the source's documents)")
    try:
        access = access_list(_strings(table, "access", fail))
    except AccessError as error:
        raise fail("access", str(error)) from None
    return {
        "collection": collection,
        "every_seconds": every,
        "include": _strings(table, "include", fail),
        "exclude": _strings(table, "exclude", fail),
        "access": access if access != ("*",) else (),
        "max_delete_share": float(share),
    }


def _strings(table: dict[str, Any], field: str, fail: Any) -> tuple[str, ...]:
    value = table.get(field, [])
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise fail(field, "a list of non-empty strings")
    return tuple(value)


def _specific(kind: SourceKind, table: dict[str, Any], fail: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field in FIELDS[kind]:
        if field not in table:
            continue
        value = table[field]
        if field in ("max_pages", "max_depth"):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100_000:
                raise fail(field, "a whole number from 0 to 100000")
        elif not isinstance(value, str):
            raise fail(field, "a string")
        values[field] = value
    if kind is SourceKind.WEB:
        url = values["url"]
        if not url.startswith(("http://", "https://")):
            raise fail("url", "an http:// or https:// URL")
        values.setdefault("allow_prefix", url.rsplit("/", 1)[0] + "/")
    if kind is SourceKind.S3 and values.get("endpoint_url", "").split("://")[0] not in ("", "http", "https"):
        raise fail("endpoint_url", "an http:// or https:// URL")
    return values
