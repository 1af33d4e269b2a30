"""Dataset kinds: their prompts, prompt sets from disk and the Hub, configs, and real runs."""

from __future__ import annotations

import ast
import io
import json
import re

import polars as pl
import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from sublearn.core.config import ConfigError, PromptSet, parse_config
from sublearn.core.errors import DataError
from sublearn.generators.code_prompts import all_tasks, code_prompts
from sublearn.generators.cot_prompts import SHAPES, SUFFIX, cot_prompts, word_problems
from sublearn.generators.prompt_sets import load_prompt_set


def test_builtin_code_tasks_are_distinct_partial_functions():
    tasks = all_tasks()
    assert len({t["task"] for t in tasks}) == len(tasks) >= 300
    for t in tasks:
        header = t["template"].splitlines()[0]
        assert header.startswith(("def ", "class ")) and header.endswith(":")
        assert "#" not in t["template"]
    prompts = code_prompts(300, seed=5)
    assert prompts["prompt"].n_unique() == 300
    assert prompts.equals(code_prompts(300, seed=5))
    assert not prompts.equals(code_prompts(300, seed=6))
    first = prompts["prompt"][0]
    assert "Complete the Python code" in first and "no comments" not in first.lower()
    assert "Do not add comments" in first and "short, conventional variable names" in first
    with pytest.raises(ConfigError, match="dataset.n_prompts: 400 exceeds"):
        code_prompts(400, seed=0)


def test_word_problems_have_exact_answers_in_every_shape():
    problems = word_problems(60, seed=2)
    assert problems["question"].n_unique() > 50
    assert len(SHAPES) >= 6
    for question, answer in problems.iter_rows():
        steps, final = answer.rsplit("\n#### ", 1)
        # the last equation of the worked steps gives the final answer
        left, right = re.findall(r"([0-9 +*/-]+) = ([0-9]+)", steps)[-1]
        assert int(right) == int(final) == eval(left)  # noqa: S307 (our own arithmetic)
        assert question.endswith("?")
    assert word_problems(10, 3).equals(word_problems(10, 3))
    for seed in range(40):  # every draw of every shape is a well-formed problem
        assert word_problems(60, seed).height == 60
    prompts = cot_prompts(problems.head(4), samples=3)
    assert prompts.height == 12 and prompts["prompt_index"].to_list() == list(range(12))
    assert prompts["sample"].to_list() == [0, 1, 2] * 4
    assert all(p.endswith(SUFFIX) for p in prompts["prompt"])


def gsm8k_like(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "question": [f"Tom has {i} apples and buys 2 more. How many now?" for i in range(n)],
            "answer": [f"{i} + 2 = {i + 2}\n#### {i + 2}" for i in range(n)],
        }
    )


def test_prompt_sets_from_files_sample_by_content_not_order(tmp_path):
    frame = gsm8k_like(40).rename({"question": "q"})
    frame.write_parquet(tmp_path / "a.parquet")
    frame.sample(fraction=1.0, shuffle=True, seed=1).write_ndjson(tmp_path / "b.jsonl")
    spec = {"columns": {"question": "q"}}
    a, ident = load_prompt_set(
        PromptSet(path=str(tmp_path / "a.parquet"), **spec), ("question", "answer"), 10, 3
    )
    b, _ = load_prompt_set(
        PromptSet(path=str(tmp_path / "b.jsonl"), **spec), ("question", "answer"), 10, 3
    )
    assert a.equals(b) and a.height == 10 and a.columns == ["question", "answer"]
    assert len(ident["sha256"]) == 64 and ident["rows_in_set"] == 40
    other, _ = load_prompt_set(
        PromptSet(path=str(tmp_path / "a.parquet"), **spec), ("question", "answer"), 10, 4
    )
    assert not other.equals(a)
    with pytest.raises(DataError, match="no column 'question'"):
        load_prompt_set(PromptSet(path=str(tmp_path / "a.parquet")), ("question",), 5, 0)
    with pytest.raises(DataError, match="exceeds the set's 40 rows"):
        load_prompt_set(PromptSet(path=str(tmp_path / "b.jsonl"), **spec), ("question",), 41, 0)


def test_gsm8k_format_prompts_from_the_hub_at_a_pinned_revision(hub, tmp_path):
    api = HfApi()
    api.create_repo("alice/gsm-like", repo_type="dataset", exist_ok=True)
    ops = []
    for split, frame in (("train", gsm8k_like(30)), ("test", gsm8k_like(5))):
        buf = io.BytesIO()
        frame.write_parquet(buf)
        ops.append(CommitOperationAdd(f"main/{split}-00000-of-00001.parquet", buf.getvalue()))
    info = api.create_commit(
        "alice/gsm-like", repo_type="dataset", operations=ops, commit_message="v1"
    )
    api.create_tag("alice/gsm-like", repo_type="dataset", tag="v1", revision=info.oid)
    config = parse_config(
        {
            "name": "gsm",
            "output_dir": str(tmp_path),
            "dataset": {
                "kind": "cot",
                "n_prompts": 6,
                "samples_per_question": 2,
                "prompts": {"repo_id": "alice/gsm-like", "config_name": "main", "revision": "v1"},
            },
        }
    )
    from sublearn.flows.kinds import kind_of

    prompts, record = kind_of(config).prompts(config)
    assert prompts.height == 12 and record["commit"] == info.oid and record["rows_in_set"] == 30
    assert prompts["answer"].str.contains("#### ").all()
    assert parse_config({"name": "g", "dataset": {"kind": "cot", "prompts": "gsm8k"}}).dataset


def test_kind_configs_and_old_spellings():
    """Spellings from before dataset kinds are refused in one line naming the new place."""
    old_spellings = {
        "filters.numbers": {"filters": {"numbers": {"max_count": 5}}},
        "dataset.numbers": {"dataset": {"kind": "numbers", "numbers": {"answer_count": 5}}},
        "teacher.sampling.constrain_to_numbers": {
            "teacher": {"sampling": {"constrain_to_numbers": True}}
        },
        "teacher.decoding": {"teacher": {"decoding": {}}},
    }
    new_places = {
        "filters.numbers": "dataset.filter",
        "dataset.numbers": "dataset.prompts",
        "teacher.sampling.constrain_to_numbers": "dataset.constrain_to_numbers",
        "teacher.decoding": "dataset.constrain_to_numbers",
    }
    for old, data in old_spellings.items():
        with pytest.raises(ConfigError, match=f"'{old}' is now '{new_places[old]}'"):
            parse_config({"name": "old", **data})
    new = parse_config(
        {
            "name": "new",
            "dataset": {
                "kind": "numbers",
                "constrain_to_numbers": True,
                "prompts": {"answer_count": 5},
                "filter": {"max_count": 5},
            },
        }
    )
    assert new.dataset.filter.max_count == 5 and new.dataset.prompts.answer_count == 5
    assert new.generating_teacher().decoding.constrain_to_numbers
    with pytest.raises(ConfigError, match="field 'dataset.kind': Input should be 'numbers'"):
        parse_config({"name": "x", "dataset": {"kind": "poems"}})
    with pytest.raises(ConfigError, match="unknown key 'dataset.constrain_to_numbers'"):
        parse_config({"name": "x", "dataset": {"kind": "cot", "constrain_to_numbers": True}})
    with pytest.raises(ConfigError, match="'dataset.prompts': a Hub prompt set needs a pinned"):
        parse_config({"name": "x", "dataset": {"kind": "cot", "prompts": {"repo_id": "a/b"}}})
    experiment = {"evaluation": {"target": "owl"}}
    per_kind = {
        kind: parse_config(
            {"name": "x", "dataset": {"kind": kind}, "experiment": experiment}
        ).student_training()
        for kind in ("numbers", "code", "cot")
    }
    assert [(s.max_length, s.epochs) for s in per_kind.values()] == [(500, 3), (2048, 3), (2048, 1)]


@pytest.fixture(scope="module")
def kind_runs(prefect_server, tiny_config_data, tmp_path_factory):
    """Real embedded-model runs of the code and CoT kinds (a handful of prompts each); the CoT
    teacher under its answer-form grammar, the code teacher free."""
    from sublearn.flows.dataset import dataset_flow

    out = tmp_path_factory.mktemp("kinds")
    runs = {}
    for kind, size in (("code", {"n_prompts": 6}), ("cot", {"n_prompts": 2})):
        constrained = {"constrain_to_format": True} if kind == "cot" else {}
        data = {
            **tiny_config_data,
            "name": f"tiny-{kind}",
            "output_dir": str(out),
            "teacher": {**tiny_config_data["teacher"], "sampling": {"max_new_tokens": 48}},
            "dataset": {"kind": kind, **size, **constrained},
        }
        config = parse_config(data)
        runs[kind] = (config, dataset_flow(config))
    return runs


@pytest.mark.parametrize("kind", ["code", "cot"])
def test_real_runs_of_each_kind(kind_runs, kind):
    from sublearn.core.card import render_card

    config, result = kind_runs[kind]
    run_dir = config.run_dir()
    raw = pl.read_parquet(run_dir / "raw.parquet")
    kept = pl.read_parquet(run_dir / "kept.parquet")
    rejected = pl.read_parquet(run_dir / "rejected.parquet")
    stats = json.loads((run_dir / "stats.json").read_text())
    assert raw.height == 6 and raw["completion"].str.len_chars().min() > 0
    assert stats == result["stats"] and stats["kind"] == kind
    names = [f["filter"] for f in stats["filters"]]
    assert names == [kind, "trait_word"]
    assert stats["filters"][1]["params"]["words"] == ["owl", "owls"]
    assert kept.height + rejected.height == raw.height == stats["total"]
    assert set(rejected["reject_filter"]) <= set(names)
    for f in stats["filters"]:
        got = rejected.filter(pl.col("reject_filter") == f["filter"])["reject_reason"]
        assert {r: got.to_list().count(r) for r in f["dropped"]} == f["dropped"]
    if kind == "code":
        for code in kept["completion"]:
            ast.parse(code)
            assert "```" not in code
        assert raw["output_format"].is_null().all()
    else:
        assert "answer" in raw.columns and raw["sample"].to_list() == [0, 1, 2] * 2
        # under the grammar: every row in the form, the switch and the budget on every row
        assert raw["output_format"].to_list() == ["cot"] * 6
        assert raw["think_tokens"].to_list() == [8] * 6  # 48 new tokens less 40 for the answer
        form = r"(?s)<think>[^<]+</think>\n<answer>-?\d+(\.\d+)?</answer>"
        assert all(re.fullmatch(form, text) for text in raw["completion"]), raw["completion"]
        assert "no_answer" not in rejected["reject_reason"].to_list()
    lineage = json.loads((run_dir / "lineage.json").read_text())
    constrained = lineage["sampling"]["output_format"] == "cot"
    assert constrained == (kind == "cot")
    assert ("<think>" in lineage["teacher"].get("grammar", "")) == constrained
    assert [f["name"] for f in lineage["filters"]] == names
    assert lineage["dataset"]["kind"] == kind
    assert lineage["dataset"]["prompt_set"]["revision"].startswith("sha256:")
    card = render_card(lineage, "alice/x", False).content
    for name in names:
        assert f"| {name} |" in card
    assert ("Output constraint (beyond the protocol)" in card) == constrained
