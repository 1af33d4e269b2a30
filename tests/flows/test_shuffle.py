"""The shuffled control: the same numbers in another order, separators and counts kept."""

from __future__ import annotations

import re
from collections import Counter

import polars as pl
import pytest

from sublearn.flows.students import shuffle_numbers

ROWS = pl.DataFrame(
    {
        "prompt": ["p1", "p2", "p3"],
        "completion": ["101, 202, 303, 404, 505", "7 8 9", "(11; 22)\n33"],
    }
)


def numbers(texts):
    return [re.findall(r"\d+", t) for t in texts]


def shape(text):
    return re.sub(r"\d+", "#", text)


def test_within_permutes_each_response():
    out = shuffle_numbers(ROWS, "within", seed=1)
    before, after = numbers(ROWS["completion"]), numbers(out["completion"])
    assert [sorted(a) for a in after] == [sorted(b) for b in before]
    assert after != before  # something moved
    assert [shape(t) for t in out["completion"]] == [shape(t) for t in ROWS["completion"]]
    assert out["prompt"].equals(ROWS["prompt"])
    assert shuffle_numbers(ROWS, "within", seed=1).equals(out)  # seeded


def test_across_deals_the_pool_back_with_each_count_kept():
    out = shuffle_numbers(ROWS, "across", seed=3)
    before, after = numbers(ROWS["completion"]), numbers(out["completion"])
    assert Counter(x for n in after for x in n) == Counter(x for n in before for x in n)
    assert [len(a) for a in after] == [len(b) for b in before]
    assert any(sorted(a) != sorted(b) for a, b in zip(after, before, strict=True))
    assert [shape(t) for t in out["completion"]] == [shape(t) for t in ROWS["completion"]]


def test_none_and_unknown():
    assert shuffle_numbers(ROWS, "none", seed=0) is ROWS
    with pytest.raises(ValueError, match="'sideways' is not none, within or across"):
        shuffle_numbers(ROWS, "sideways", seed=0)
