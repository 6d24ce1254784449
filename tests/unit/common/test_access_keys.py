"""Access lists in the key file and the retriever's expression: ``user``/``groups`` fields of
a key (file and variable), the principals a key holds, ARRAY_CONTAINS_ANY escaped like every
filter, and collections made before access lists (all public)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragmesh.vocabulary import FilterOp
from ragmesh.vocabulary.keys import KeyFileError, digest, env_entry, parse_env, parse_file, toml_entry
from services.common.auth import Authenticator
from services.common.errors import InvalidArgument
from services.retriever.filters import NOTHING, Clause, access_term, access_terms, build_expression

KEY = "rmk_" + "a" * 43


def test_a_key_carries_its_user_and_groups(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(
        f'[[keys]]\nsha256 = "{digest(KEY)}"\ntenant = "acme"\ncollections = ["docs"]\nuser = "alice"\n'
        'groups = ["hr", "finance"]\n'
    )
    grant = parse_file(path)[0]
    assert (grant.user, grant.groups) == ("alice", ("finance", "hr"))
    assert parse_env("V", env_entry(grant)) == [grant] and "groups = [" in toml_entry(grant)
    from ragmesh.vocabulary.keys import KeyStore

    principal = Authenticator(KeyStore(path)).authenticate({"x-api-key": KEY})
    assert principal.principals() == ("*", "user:alice", "group:finance", "group:hr") and not principal.sees_all
    path.write_text(path.read_text().replace('"finance"', '"fin ance"'))
    with pytest.raises(KeyFileError, match=r"keys\[0\]: group 'fin ance' is invalid"):
        parse_file(path)


def test_array_contains_any_is_escaped_and_only_for_access() -> None:
    clause = Clause("access", FilterOp.ARRAY_CONTAINS_ANY, values=("*", 'group:"x"] or true or ["'))
    assert build_expression([clause]) == '(ARRAY_CONTAINS_ANY(access, ["*", "group:\\"x\\"] or true or [\\""]))'
    terms = build_expression([clause], "terms")  # milvus-lite: hex digests, no text of the caller's
    hostile = access_term(str(clause.values[1]))
    assert terms == f'(access_terms like "%|{access_term("*")}|%" or access_terms like "%|{hostile}|%")'
    assert access_terms(["*"]) == f"|{access_term('*')}|" and set(access_term("group:hr")) <= set("0123456789abcdef")
    with pytest.raises(InvalidArgument, match="ARRAY_CONTAINS_ANY applies to the access column only"):
        build_expression([Clause("team", FilterOp.ARRAY_CONTAINS_ANY, values=("a",))])
    with pytest.raises(InvalidArgument, match="access takes ARRAY_CONTAINS_ANY"):
        build_expression([Clause("access", FilterOp.EQ, value="*")])
    with pytest.raises(InvalidArgument, match="strings"):
        build_expression([Clause("access", FilterOp.ARRAY_CONTAINS_ANY, values=(1,))])


def test_a_collection_without_access_lists_is_public() -> None:
    public = Clause("access", FilterOp.ARRAY_CONTAINS_ANY, values=("*", "group:hr"))
    restricted_only = Clause("access", FilterOp.ARRAY_CONTAINS_ANY, values=("group:hr",))
    assert build_expression([public], "none") == ""
    assert build_expression([restricted_only], "none") == f"({NOTHING})"
