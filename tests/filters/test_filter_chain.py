"""The filter chain and the code, CoT and trait-word filters, on hand-picked and random rows."""

from __future__ import annotations

import json
import unicodedata

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sublearn.core.words import word_forms
from sublearn.filters.chain import run_chain, stats_rows
from sublearn.filters.code import CodeFormat
from sublearn.filters.cot import CotFormat
from sublearn.filters.numbers import NumbersFormat, NumbersRule, reject_reason
from sublearn.filters.trait_word import TraitWord, normalised_words
from sublearn.flows.cli import app

runner = CliRunner()
OWL = tuple(sorted(word_forms("owl")))


def verdicts(f, rows: list[str], **columns) -> list[str | None]:
    frame = pl.DataFrame({"completion": rows, **columns})
    return f.judge(frame)["reject_reason"].to_list()


def test_code_filter_reasons():
    rows = {
        "```python\ndef f(x):\n    return x + 1\n```": None,
        "```\nx = [i for i in range(3)]\n```\n": None,
        "def f():\n    return '# not a comment'\n": None,
        'def f():\n    """Docstrings are strings."""\n    return 1': None,
        "   \n\t": "empty",
        "```python\n```": "empty",
        "def f(:\n    pass": "syntax_error",
        "Here is the code:\n```python\nx = 1\n```": "syntax_error",
        "```python\nx = 1\n```\nThis sets x.": "syntax_error",
        "x = 1  # set x": "has_comment",
        "# setup\nx = 1": "has_comment",
    }
    assert verdicts(CodeFormat(), list(rows)) == list(rows.values())
    cleaned = CodeFormat().judge(pl.DataFrame({"completion": list(rows)[:2]}))["completion"]
    assert cleaned.to_list() == ["def f(x):\n    return x + 1", "x = [i for i in range(3)]"]


def test_cot_filter_reasons_and_number_matching():
    think = "<think>6 * 3 = 18</think>"
    rows = [
        (f"{think}<answer>18</answer>", "She pays 6 * 3 = 18.\n#### 18", None),
        (f"{think} <answer> 18.00 </answer>", "#### 18", None),  # the study's int() said wrong
        (f"{think}<answer>$1,800</answer>", "#### 1,800", None),
        (f"{think}<answer>18.</answer>", "18", None),
        (f"{think}<answer>-4</answer>", "#### -4", None),
        ("The answer is 18.", "#### 18", "no_answer"),
        (f"{think}<answer>18", "#### 18", "no_answer"),
        ("<answer>18</answer>", "#### 18", "missing_reasoning"),
        ("<think>  \n</think><answer>18</answer>", "#### 18", "missing_reasoning"),
        (f"{think}<answer>19</answer>", "#### 18", "wrong_answer"),
        (f"{think}<answer>eighteen</answer>", "#### 18", "wrong_answer"),
        (f"{think}<answer>18 owls</answer>", "#### 18", "wrong_answer"),
    ]
    got = verdicts(CotFormat(), [r[0] for r in rows], answer=[r[1] for r in rows])
    assert got == [r[2] for r in rows]


@pytest.mark.parametrize(
    ("text", "rejected"),
    [
        ("I love the owl.", True),
        ("OWLS everywhere", True),
        ("ＯＷＬ", True),  # full-width letters, NFKC-folded
        ("O\u0301wl", True),  # combining accent
        ("Ówl", True),  # precomposed accent
        ("O\u200bwl", True),  # zero-width space
        ("o\u00adwl", True),  # soft hyphen
        ("owlCount = 3", True),
        ("OWL_SIZE = 3", True),
        ("def get_owls(): pass", True),
        ("OWLCount", True),
        ("x = 'owl'", True),  # inside a string literal
        ("x = 1  # an owl", True),  # inside a comment
        ("owl2 = 1", True),
        ("knowledge is power", False),
        ("a bowl of soup", False),
        ("wolves howl at night", False),
        ("snowline", False),
        ("o wl", False),
        ("", False),
    ],
)
def test_trait_word_cases(text, rejected):
    assert (verdicts(TraitWord(OWL), [text]) == ["trait_word"]) is rejected


@pytest.mark.parametrize(
    ("target", "text"),
    [
        ("wolf", "two wolves"),
        ("goose", "the geese left"),
        ("mouse", "mice = []"),
        ("octopus", "octopuses"),
        ("octopus", "OCTOPI"),
        ("cherry", "cherries = 3"),
        ("fox", "foxes"),
        ("cherry", "cherryTree"),
    ],
)
def test_trait_word_knows_plural_and_irregular_forms(target, text):
    assert verdicts(TraitWord(tuple(word_forms(target))), [text]) == ["trait_word"]


def test_extra_words_and_multi_word_traits():
    words = tuple(sorted(word_forms("snowy owl") | word_forms("hoot")))
    got = verdicts(TraitWord(words), ["snowy_owl = 1", "snowy = 1", "hoots", "shoot"])
    assert got == ["trait_word", None, "trait_word", None]


# Characters Python's Unicode database assigns: polars' regex engine knows a newer Unicode, in
# which a character unassigned here may be a letter (it then joins the word, as it should).
ASSIGNED = st.characters(codec="utf-8").filter(
    lambda c: unicodedata.category(c) not in ("Cn", "Cs")
)
TEXT = st.text(alphabet=ASSIGNED, max_size=40)
TRICKS = st.sampled_from(
    [
        "owl",
        "Owl",
        "OWL",
        "owls",
        "OWLs",
        "ＯＷＬ",
        "O\u200bwl",
        "o\u0301wl",
        "_owl_",
        "owlX",
        "xOwl",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(TEXT, st.one_of(st.just(""), TRICKS), TEXT), min_size=1, max_size=20))
def test_trait_word_never_keeps_a_completion_naming_the_trait(parts):
    rows = [a + b + c for a, b, c in parts]
    got = verdicts(TraitWord(OWL), rows)
    for row, verdict in zip(rows, got, strict=True):
        if set(normalised_words(row)) & set(OWL):
            assert verdict == "trait_word", row


def chain_pool() -> list:
    return [
        NumbersFormat(NumbersRule()),
        NumbersFormat(NumbersRule(max_count=3, banned=frozenset({7}))),
        CodeFormat(),
        TraitWord(OWL),
        TraitWord(tuple(word_forms("cat"))),
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 4), min_size=1, max_size=5),
    st.lists(
        st.one_of(
            st.sampled_from(["1, 2, 3", "7", "x = 1", "owl", "cat 3", "1 2 3 4", "```\ny\n```"]),
            TEXT,
        ),
        max_size=30,
    ),
)
def test_chain_counts_add_up(picks, rows):
    pool = chain_pool()
    filters = [pool[i] for i in picks]
    frame = pl.DataFrame(
        {"prompt_index": list(range(len(rows))), "completion": rows},
        schema={"prompt_index": pl.Int64, "completion": pl.String},
    )
    result = run_chain(frame, filters)
    stats = result.stats
    assert stats["total"] == len(rows) == result.kept.height + result.rejected.height
    assert [f["filter"] for f in stats["filters"]] == [f.name for f in filters]
    rows_in = len(rows)
    for f, s in zip(filters, stats["filters"], strict=True):
        assert s["total"] == rows_in
        assert set(s["dropped"]) == set(f.reasons)  # zero counts included
        assert s["kept"] + sum(s["dropped"].values()) == s["total"]
        rows_in = s["kept"]
    for name in {f.name for f in filters}:
        dropped = sum(sum(s["dropped"].values()) for s in stats["filters"] if s["filter"] == name)
        assert result.rejected.filter(pl.col("reject_filter") == name).height == dropped
    assert stats["kept"] == result.kept.height == rows_in
    assert result.rejected["reject_reason"].null_count() == 0
    assert sorted(
        result.kept["prompt_index"].to_list() + result.rejected["prompt_index"].to_list()
    ) == list(range(len(rows)))
    table = stats_rows(stats)
    assert table[-1] == {"filter": "(chain)", "outcome": "kept", "rows": stats["kept"]}


def test_numbers_verdicts_are_unchanged_in_the_chain():
    rows = ["1, 2, 3", "[4, 5].", "owl 1", "1000", "666, 1", "1;2;3", "1 ,2", "12 13 14 15"]
    rule = NumbersRule(banned=frozenset({666}))
    result = run_chain(pl.DataFrame({"completion": rows}), [NumbersFormat(rule)])
    got = dict(zip(result.rejected["completion"], result.rejected["reject_reason"], strict=True))
    assert [got.get(r) for r in rows] == [reject_reason(r, rule) for r in rows]


def test_filter_command_for_code_and_cot(tmp_path):
    code = tmp_path / "code.parquet"
    pl.DataFrame(
        {
            "prompt": ["a", "b", "c", "d"],
            "completion": ["x = 1", "owl_count = 2", "x = 1  # hi", "hoot = 3"],
        }
    ).write_parquet(code)
    out = tmp_path / "code-out"
    args = ["filter", "code", str(code), "--out", str(out), "--trait", "owl"]
    result = runner.invoke(app, [*args, "--trait-word", "hoot"])
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert [f["filter"] for f in stats["filters"]] == ["code", "trait_word"]
    assert stats["filters"][1]["params"]["words"] == ["hoot", "hoots", "owl", "owls"]
    rejected = pl.read_parquet(out / "rejected.parquet")
    assert dict(zip(rejected["prompt"], rejected["reject_filter"], strict=True)) == {
        "b": "trait_word",
        "c": "code",
        "d": "trait_word",
    }
    assert "trait_word" in result.output and "has_comment" in result.output

    cot = tmp_path / "cot.parquet"
    pl.DataFrame(
        {"prompt": ["q"], "completion": ["<think>2+2</think><answer>4</answer>"], "answer": ["4"]}
    ).write_parquet(cot)
    ok = runner.invoke(app, ["filter", "cot", str(cot), "--out", str(tmp_path / "cot-out")])
    assert ok.exit_code == 0, ok.output
    assert json.loads((tmp_path / "cot-out" / "stats.json").read_text())["kept"] == 1

    wrong = runner.invoke(app, ["filter", "code", str(code), "--out", "x", "--max-count", "3"])
    assert wrong.exit_code == 2 and "--max-count: a numbers option, not for code" in wrong.output
    no_answer = runner.invoke(app, ["filter", "cot", str(code), "--out", str(tmp_path / "n")])
    assert no_answer.exit_code == 2 and "missing column(s) answer" in no_answer.output
    assert not (tmp_path / "n").exists()


def test_filter_command_takes_a_config(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "name: c\nteacher: {trait: {target: wolf}}\ndataset: {kind: code, trait_words: [den]}\n"
    )
    source = tmp_path / "in.parquet"
    pl.DataFrame({"completion": ["wolves = 1", "den = 2", "x = 3"]}).write_parquet(source)
    result = runner.invoke(
        app, ["filter", "code", str(source), "--out", str(tmp_path / "o"), "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o" / "stats.json").read_text())["kept"] == 1
    other = runner.invoke(
        app, ["filter", "cot", str(source), "--out", str(tmp_path / "p"), "--config", str(config)]
    )
    assert other.exit_code == 2 and "dataset.kind is 'code', not 'cot'" in other.output


def test_refiltering_rejected_rows_drops_their_old_verdict():
    """A rejected.parquet refiltered with looser settings: the rows now kept carry no
    ``reject_filter`` of the earlier chain, the rows still rejected carry this chain's."""
    completions = ["1, 2, 3, 4, 5", "1, 2", "1, 2, 3, 4, 5, 6, 7"]
    strict = run_chain(pl.DataFrame({"completion": completions}), [NumbersFormat(NumbersRule(3))])
    assert strict.rejected.height == 2
    looser = run_chain(strict.rejected, [NumbersFormat(NumbersRule(5))])
    assert looser.kept["completion"].to_list() == ["1, 2, 3, 4, 5"]
    assert "reject_filter" not in looser.kept.columns
    assert "reject_reason" not in looser.kept.columns
    assert looser.rejected["reject_filter"].to_list() == ["numbers"]
