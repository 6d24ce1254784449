"""Structured filters → Milvus expressions: every operator and kind, the refusals, and proof
by parsing (with milvus-lite's own parser) that a value can only ever be one literal."""

from __future__ import annotations

import random
from typing import Any

import pytest
from milvus_lite.search.filter import parse_expr
from milvus_lite.search.filter import tokens as lite_tokens

from ragmesh.vocabulary.limits import MAX_FILTER_CLAUSES, MAX_IN_VALUES
from services.common.errors import InvalidArgument
from services.retriever.filters import (
    Clause,
    FilterOp,
    Scalar,
    build_expression,
    document_ids_expression,
)

EQ, NE, LT, LE, GT, GE, IN, NOT_IN = (
    FilterOp.EQ,
    FilterOp.NE,
    FilterOp.LT,
    FilterOp.LE,
    FilterOp.GT,
    FilterOp.GE,
    FilterOp.IN,
    FilterOp.NOT_IN,
)


def shape(node: Any) -> Any:
    """A parsed milvus-lite expression without source positions, as nested tuples."""
    kind = type(node).__name__
    if kind in ("And", "Or"):
        return (kind.lower(), *[shape(operand) for operand in node.operands])
    if kind == "CmpOp":
        return (node.op, shape(node.left), shape(node.right))
    if kind == "InOp":
        return ("not in" if node.negate else "in", node.field.name, [e.value for e in node.values.elements])
    if kind == "PathAccess":
        return (shape(node.base), *node.path)
    if kind == "FieldRef":
        return node.name
    if kind in ("StringLit", "IntLit", "FloatLit", "BoolLit"):
        return node.value
    raise AssertionError(f"unexpected node {node!r}")


def parsed(*clauses: Clause) -> Any:
    return shape(parse_expr(build_expression(clauses)))


def test_no_clauses_give_no_expression() -> None:
    assert build_expression([]) == ""


@pytest.mark.parametrize(
    ("op", "value", "text"),
    [
        (EQ, "en", 'metadata["lang"] == "en"'),
        (NE, "en", 'metadata["lang"] != "en"'),
        (EQ, 7, 'metadata["lang"] == 7'),
        (LT, 2020, 'metadata["lang"] < 2020'),
        (LE, -3, 'metadata["lang"] <= -3'),
        (GT, 2.5, 'metadata["lang"] > 2.5'),
        (GE, 1e-7, 'metadata["lang"] >= 1e-07'),
        (EQ, True, 'metadata["lang"] == true'),
        (NE, False, 'metadata["lang"] != false'),
    ],
)
def test_each_comparison_renders_one_term(op: FilterOp, value: Scalar, text: str) -> None:
    expression = build_expression([Clause("lang", op, value)])
    assert expression == f"({text})"
    tree = shape(parse_expr(expression))
    assert tree == shape(parse_expr(text)) == (op.value, ("metadata", "lang"), value)
    assert type(tree[2]) is type(value)  # True stays a bool, 7 an int, 2.5 a float


def test_in_and_not_in_on_metadata_are_chains_of_equalities() -> None:
    values: tuple[Scalar, ...] = ("en", "fr", "en")
    assert parsed(Clause("lang", IN, values=values)) == (
        "or",
        ("==", ("metadata", "lang"), "en"),
        ("==", ("metadata", "lang"), "fr"),
    )
    assert parsed(Clause("lang", NOT_IN, values=values)) == (
        "and",
        ("!=", ("metadata", "lang"), "en"),
        ("!=", ("metadata", "lang"), "fr"),
    )
    assert parsed(Clause("year", IN, values=(2020,))) == ("==", ("metadata", "year"), 2020)


def test_numbers_of_both_kinds_mix_in_one_list() -> None:
    assert parsed(Clause("year", IN, values=(2020, 2021.5))) == (
        "or",
        ("==", ("metadata", "year"), 2020),
        ("==", ("metadata", "year"), 2021.5),
    )


def test_document_id_uses_the_column_and_native_in() -> None:
    assert parsed(Clause("document_id", EQ, "doc-1")) == ("==", "document_id", "doc-1")
    assert parsed(Clause("document_id", NOT_IN, values=("a", "b"))) == ("not in", "document_id", ["a", "b"])
    assert parse_expr(document_ids_expression(["a", "b", "a"])) == parse_expr('document_id in ["a", "b"]')


def test_clauses_are_anded_each_in_parentheses() -> None:
    expression = build_expression(
        [Clause("lang", IN, values=("en", "fr")), Clause("year", GE, 2020), Clause("document_id", NE, "x")]
    )
    assert expression == (
        '(metadata["lang"] == "en" or metadata["lang"] == "fr") and (metadata["year"] >= 2020) and (document_id != "x")'
    )
    assert shape(parse_expr(expression))[0] == "and"


HOSTILE_STRINGS = [
    'x" or 1==1 or "',
    'en") or (document_id != "',
    "' or '1'=='1",
    "\\",
    '\\"',
    'a\\" or true or \\"',
    "line\nbreak\r\tand tab",
    "]] ) ( [[",
    "metadata[\"lang\"] == 'en'",
    "naïve 日本語 🙂",
    "",
]


@pytest.mark.parametrize("value", HOSTILE_STRINGS)
def test_a_string_value_is_always_one_literal(value: str) -> None:
    for op in (EQ, NE):
        assert parsed(Clause("lang", op, value)) == (op.value, ("metadata", "lang"), value)
    assert parsed(Clause("document_id", IN, values=(value or "x",))) == ("in", "document_id", [value or "x"])


def test_random_strings_survive_the_round_trip_through_the_tokenizer() -> None:
    alphabet = ['"', "'", "\\", "\n", "\r", "\t", " ", "[", "]", "(", ")", "=", "a", "é", "日", "or", "\\n"]
    rng = random.Random(7)
    for _ in range(500):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        literal = build_expression([Clause("k", EQ, value)])[len('(metadata["k"] == ') : -1]
        tokens = lite_tokens.tokenize(literal)
        assert [t.kind for t in tokens] == [lite_tokens.TokenKind.STRING, lite_tokens.TokenKind.EOF]
        assert tokens[0].value == value


@pytest.mark.parametrize(
    "field",
    [
        'lang"] == "en" or metadata["x',
        "lang or 1==1",
        "1lang",
        "_lang",
        "lang-x",
        "lang.x",
        "metadata",
        'metadata["lang"]',
        "",
        " lang",
        "lang\n",
        "a" * 65,
        "chunk id",
        "ünïcode",
    ],
)
def test_field_names_outside_the_key_pattern_are_refused(field: str) -> None:
    if field == "metadata":  # a legal key name: it means metadata["metadata"]
        assert parsed(Clause(field, EQ, "x")) == ("==", ("metadata", "metadata"), "x")
        return
    with pytest.raises(InvalidArgument, match="filters\\[0\\]: field"):
        build_expression([Clause(field, EQ, "x")])


def test_a_key_of_64_characters_is_accepted() -> None:
    key = "k" + "_" * 62 + "9"
    assert parsed(Clause(key, EQ, 1)) == ("==", ("metadata", key), 1)


@pytest.mark.parametrize(
    ("clause", "message"),
    [
        (Clause("lang", None, "en"), "op is missing"),
        (Clause("lang", EQ), "needs a value"),
        (Clause("lang", EQ, "en", values=("fr",)), "takes value, not values"),
        (Clause("lang", IN, "en"), "takes values, not value"),
        (Clause("lang", IN), "at least one value"),
        (Clause("lang", IN, values=("en", None)), "needs a kind"),
        (Clause("lang", IN, values=("en", 1)), "mix number and string"),
        (Clause("flag", IN, values=(True, False)), "a bool takes EQ or NE only"),
        (Clause("lang", LT, "m"), "LT compares numbers only, got a string"),
        (Clause("flag", GE, True), "GE compares numbers only, got a bool"),
        (Clause("document_id", EQ, 5), "document_id is compared with strings only"),
        (Clause("document_id", LT, 5), "strings only"),
        (Clause("document_id", EQ, ""), "is empty"),
        (Clause("document_id", EQ, "x" * 513), "longer than 512 bytes"),
        (Clause("score", GT, float("nan")), "not a finite number"),
        (Clause("score", GT, float("inf")), "not a finite number"),
        (Clause("big", EQ, 1 << 63), "outside the 64-bit range"),
        (Clause("lang", EQ, "x" * 4097), "longer than 4096"),
        (Clause("lang", EQ, "nul\x00byte"), "control characters"),
        (Clause("lang", EQ, "bell\x07"), "control characters"),
        (Clause("lang", IN, values=tuple(range(MAX_IN_VALUES + 1))), "at most 1000"),
    ],
)
def test_malformed_clauses_are_invalid_arguments(clause: Clause, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        build_expression([Clause("ok", EQ, 1), clause])


def test_errors_name_the_offending_clause() -> None:
    with pytest.raises(InvalidArgument, match=r"^filters\[1\]: op is missing"):
        build_expression([Clause("a", EQ, 1), Clause("b", None, 1)])


def test_too_many_clauses_are_refused() -> None:
    build_expression([Clause("a", EQ, i) for i in range(MAX_FILTER_CLAUSES)])
    with pytest.raises(InvalidArgument, match=f"at most {MAX_FILTER_CLAUSES}"):
        build_expression([Clause("a", EQ, i) for i in range(MAX_FILTER_CLAUSES + 1)])


def test_the_largest_in_list_is_accepted_and_parses() -> None:
    expression = build_expression([Clause("n", IN, values=tuple(range(MAX_IN_VALUES)))])
    tree = parse_expr(expression)
    assert len(tree.operands) == MAX_IN_VALUES


@pytest.mark.parametrize("ids", [[], ["a", ""], ["x" * 600], ["tab\x0bid"], [f"d{i}" for i in range(1001)]])
def test_bad_document_id_lists_are_refused(ids: list[str]) -> None:
    with pytest.raises(InvalidArgument):
        document_ids_expression(ids)
