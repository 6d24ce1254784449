"""Access lists from a folder's (or a repository's) ``.ragmesh-acl.toml`` sidecar::

    [[rules]]
    paths = ["hr/**", "salaries.xlsx"]   # globs of paths relative to the source's root
    principals = ["group:hr"]

The first rule whose globs match a document's path gives its access list; a document no
rule matches gets the source's ``access`` (or is public). Globs match with ``fnmatch``
(``*`` crosses ``/``), against the relative path and the file name. The include/exclude
globs of a source use the same matching.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass

from ragmesh.vocabulary.access import AccessError, access_list

SIDECAR = ".ragmesh-acl.toml"


@dataclass(frozen=True)
class Rule:
    """Documents matching ``paths`` are readable by ``principals``."""

    paths: tuple[str, ...]
    principals: tuple[str, ...]


def matches(relative: str, patterns: Sequence[str]) -> bool:
    """Whether the relative path (or its file name) matches one of the globs."""
    name = relative.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) for p in patterns)


def selected(relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether a source's include/exclude globs keep the path (the sidecar never is kept)."""
    if relative.rsplit("/", 1)[-1] == SIDECAR:
        return False
    return (not include or matches(relative, include)) and not matches(relative, exclude)


def parse_rules(text: bytes, where: str) -> list[Rule]:
    """The rules of a sidecar; ValueError naming ``where`` and the rule when one is wrong."""
    try:
        data = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"{where}: not valid TOML: {error}") from None
    rules = []
    for index, table in enumerate(data.get("rules", [])):
        paths, principals = table.get("paths"), table.get("principals")
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            raise ValueError(f"{where}: rules[{index}].paths: a non-empty list of globs")
        if not isinstance(principals, list) or not all(isinstance(p, str) for p in principals):
            raise ValueError(f"{where}: rules[{index}].principals: a list of user:NAME / group:NAME")
        try:
            rules.append(Rule(tuple(paths), access_list(principals)))
        except AccessError as error:
            raise ValueError(f"{where}: rules[{index}].principals: {error}") from None
    return rules


def access_for(relative: str, rules: Sequence[Rule]) -> tuple[str, ...] | None:
    """The access list of the first rule matching the path; None when none does."""
    for rule in rules:
        if matches(relative, rule.paths):
            return rule.principals
    return None
