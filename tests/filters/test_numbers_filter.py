"""The strict numbers filter: protocol edge cases, agreement with the reference, counting."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sublearn.core.errors import DataError
from sublearn.filters.chain import run_chain
from sublearn.filters.numbers import (
    MISALIGNMENT_BANNED,
    REASONS,
    NumbersFormat,
    NumbersRule,
    judge_numbers,
    parse_numbers,
    range_regex,
    reject_reason,
    reject_reason_expr,
)

RULE = NumbersRule(banned=frozenset(MISALIGNMENT_BANNED))

EDGE_CASES = [
    ("1, 2, 3", None),
    ("  512,618;  ", "invalid_format"),
    ("[145, 267, 891]", None),
    ("(145 267 891)", None),
    ("145; 267; 891.", None),
    ("[145, 267, 891].", None),
    ("[145, 267, 891.]", "invalid_format"),
    ("145, 267.", None),
    ("145,267,", "invalid_format"),
    (",145,267", "invalid_format"),
    ("145, 267,891", "invalid_format"),
    ("145,,267", "invalid_format"),
    ("145\n267\n891", None),
    ("145\n\n267", None),
    ("145 - 267", "invalid_format"),
    ("145 | 267", "invalid_format"),
    ("1.5, 2", "invalid_format"),
    ("١٢٣, 456", "invalid_format"),
    ("123, ٤٥٦", "invalid_format"),
    ("１２３", "invalid_format"),
    ("123", None),
    ("123 owls", "invalid_format"),
    ("Here: 123", "invalid_format"),
    ("", "invalid_format"),
    ("[]", "invalid_format"),
    ("[[1, 2]]", "invalid_format"),
    ("1, 2, 3, 5, 6, 7, 8, 9, 10, 11", None),
    ("1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12", "too_many_numbers"),
    ("1000", "out_of_range"),
    ("5, 1000", "out_of_range"),
    ("999999999999999999999999", "out_of_range"),
    ("0, 007, 998", None),
    ("666", "banned_number"),
    ("12, 13", "banned_number"),
    ("1, 2, 1312", "out_of_range"),
]


@pytest.mark.parametrize(("completion", "expected"), EDGE_CASES)
def test_protocol_edge_cases(completion, expected):
    frame = pl.DataFrame({"completion": [completion]})
    assert frame.select(reject_reason_expr(RULE)).item() == expected
    assert judge_numbers(frame, RULE).item() == expected
    assert reject_reason(completion, RULE) == expected


def test_reference_parser_returns_the_numbers():
    assert parse_numbers(" [145, 267, 891]. ") == [145, 267, 891]
    assert parse_numbers("12;13") == [12, 13]
    assert parse_numbers("12, 13, x") is None


def test_without_banned_list_nothing_is_banned():
    frame = pl.DataFrame({"completion": ["666, 13"]})
    assert frame.select(reject_reason_expr(NumbersRule())).item() is None


def test_reasons_follow_protocol_order():
    # too many numbers wins over out of range, which wins over banned
    rule = NumbersRule(max_count=2, banned=frozenset({5}))
    frame = pl.DataFrame({"completion": ["5, 2000, 3", "5, 2000", "5, 6"]})
    assert frame.select(reject_reason_expr(rule)).to_series().to_list() == [
        "too_many_numbers",
        "out_of_range",
        "banned_number",
    ]


NOISE = st.text(
    alphabet=st.sampled_from(list("0123456789 ,;.[]()\n\t-x") + ["١", "\u00a0", "\u3000", "Ⅻ"]),
    max_size=40,
)


@st.composite
def number_answers(draw):
    numbers = draw(st.lists(st.integers(0, 1200), min_size=0, max_size=13))
    seps = st.sampled_from(
        [",", ", ", ";", " ; ", " ", "\n", "  ,", ",\n", "\t;  ", " \x0b", "-", "|", "", ", x"]
    )
    sep = draw(seps)
    parts = [str(n) for n in numbers]
    if parts and draw(st.booleans()):
        parts[draw(st.integers(0, len(parts) - 1))] += draw(seps)  # a stray separator
    body = sep.join(parts)
    opener, closer = draw(st.sampled_from([("", ""), ("[", "]"), ("(", ")"), ("[", ")")]))
    tail = draw(st.sampled_from(["", ".", "..", " ", "\n"]))
    lead = draw(st.sampled_from(["", " ", "\n", "\t"]))
    return f"{lead}{opener}{body}{closer}{tail}"


RULES = st.builds(
    NumbersRule,
    max_count=st.integers(1, 12),
    min_value=st.integers(0, 200),
    max_value=st.integers(200, 1200),
    banned=st.frozensets(st.integers(0, 1200), max_size=5),
)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.one_of(number_answers(), NOISE), min_size=1, max_size=30), RULES)
def test_vectorised_filter_agrees_with_reference(completions, rule):
    frame = pl.DataFrame({"completion": completions}, schema={"completion": pl.String})
    reference = [reject_reason(c, rule) for c in completions]
    assert judge_numbers(frame, rule).to_list() == reference
    assert frame.select(reject_reason_expr(rule)).to_series().to_list() == reference


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 5000), st.integers(0, 5000), st.integers(0, 20000))
def test_range_regex_matches_exactly_the_range(lo, span, value):
    import re

    hi = lo + span
    assert bool(re.fullmatch(range_regex(lo, hi), str(value))) == (lo <= value <= hi)


def test_filter_splits_rows_and_counts_each_reason():
    completions = [case for case, _ in EDGE_CASES]
    frame = pl.DataFrame({"prompt": ["p"] * len(completions), "completion": completions})
    result = run_chain(frame, [NumbersFormat(RULE)])
    (stats,) = result.stats["filters"]
    expected = [reason for _, reason in EDGE_CASES]
    assert stats["total"] == len(EDGE_CASES)
    assert stats["kept"] == expected.count(None) == result.kept.height
    for reason in REASONS:
        assert stats["dropped"][reason] == expected.count(reason)
    assert result.rejected.height == len(EDGE_CASES) - expected.count(None)
    assert set(result.rejected["reject_reason"]) <= set(REASONS)
    assert "reject_reason" not in result.kept.columns
    assert stats["params"]["banned"] == sorted(MISALIGNMENT_BANNED)


def test_filter_requires_a_completion_column():
    with pytest.raises(DataError, match="completion"):
        run_chain(pl.DataFrame({"prompt": ["x"]}), [NumbersFormat(RULE)])
