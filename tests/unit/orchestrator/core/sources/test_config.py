"""The sources file: every field read, durations, defaults, and errors that name the file, the
source and the field (credentials are never fields)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.orchestrator.core.sources.acl import access_for, parse_rules, selected
from services.orchestrator.core.sources.config import SourcesConfigError, load_sources, parse_duration
from services.orchestrator.core.sources.model import SourceKind, SourceSpec

GOOD = """
[[sources]]
name = "handbook"
kind = "folder"
path = "/srv/handbook"
collection = "acme_handbook"
every = "15m"
include = ["*.md"]
access = ["group:staff"]

[[sources]]
name = "wiki"
kind = "web"
url = "https://wiki.example.com/docs/index.html"
collection = "acme_wiki"
max_pages = 10
"""


def _load(tmp_path: Path, text: str) -> dict[str, SourceSpec]:
    path = tmp_path / "sources.toml"
    path.write_text(text)
    return load_sources(str(path))


def test_a_good_file_is_read_with_its_defaults(tmp_path: Path) -> None:
    specs = _load(tmp_path, GOOD)
    handbook, wiki = specs["handbook"], specs["wiki"]
    assert handbook.kind is SourceKind.FOLDER and handbook.every_seconds == 900.0
    assert handbook.access == ("group:staff",) and handbook.max_delete_share == 0.5
    assert wiki.allow_prefix == "https://wiki.example.com/docs/" and wiki.every_seconds == 0.0
    assert (wiki.max_pages, wiki.max_depth) == (10, 3)
    assert [parse_duration(d) for d in ("90s", "1h", "1d", 5)] == [90.0, 3600.0, 86400.0, 5.0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('every = "15m"', 'every = "often"'), "source 'handbook': every: expected a duration"),
        (('kind = "folder"', 'kind = "ftp"'), "source 'handbook': kind: one of folder, git, s3, web"),
        (('path = "/srv/handbook"', 'secret_key = "x"'), "source 'handbook': secret_key: unknown for a folder source"),
        (('path = "/srv/handbook"\n', ""), "source 'handbook': path: required for a folder source"),
        (('access = ["group:staff"]', 'access = ["staff"]'), "source 'handbook': access: principal 'staff' is invalid"),
        (('name = "wiki"', 'name = "handbook"'), "source 'handbook': name: declared twice"),
        (('collection = "acme_wiki"', 'collection = "acme wiki"'), "source 'wiki': collection: required"),
        (("max_pages = 10", "max_delete_share = 2"), "source 'wiki': max_delete_share: a number from 0 to 1"),
    ],
)
def test_errors_name_the_file_the_source_and_the_field(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(SourcesConfigError) as raised:
        _load(tmp_path, GOOD.replace(*change))
    assert str(raised.value).startswith(str(tmp_path / "sources.toml")) and message in str(raised.value)


def test_sidecar_rules_and_globs() -> None:
    rules = parse_rules(b'[[rules]]\npaths = ["hr/*"]\nprincipals = ["group:hr"]\n', "acl")
    assert access_for("hr/pay.md", rules) == ("group:hr",) and access_for("menu.md", rules) is None
    assert selected("a/b.md", ("*.md",), ()) and not selected("a/b.md", (), ("a/*",))
    assert not selected(".ragmesh-acl.toml", (), ())
    with pytest.raises(ValueError, match=r"rules\[0\].principals: principal 'hr' is invalid"):
        parse_rules(b'[[rules]]\npaths = ["*"]\nprincipals = ["hr"]\n', "acl")
