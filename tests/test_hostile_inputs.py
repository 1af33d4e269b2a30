"""Hostile inputs found by an adversarial user (issue 26): each is refused in one line naming
the field or file, or treated as the corrupt entry it is, never a crash at run time."""

from __future__ import annotations

import json
import subprocess
import sys
import typing

import polars as pl
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sublearn.core.config import (
    ConfigError,
    ExperimentConfig,
    check_word,
    load_config,
    parse_config,
)
from sublearn.core.errors import DataError
from sublearn.core.steps import StepPlan, StepStore
from tests.conftest import run_verb


def word_fields(model=ExperimentConfig, prefix: str = "") -> list[str]:
    """Every config field that holds trait words (targets, plurals, panels, filter words):
    the strings that can become part of a folder name or a pattern. Walks the schema, so a
    field added later is covered the day it is."""
    from pydantic import BaseModel

    found = []
    for name, field in model.model_fields.items():
        types, metadata = [field.annotation], list(field.metadata)
        seen = []
        while types:
            t = types.pop()
            seen.append(t)
            metadata += getattr(t, "__metadata__", ())
            types.extend(typing.get_args(t))
        if any(getattr(m, "func", None) is check_word for m in metadata):
            found.append(f"{prefix}{name}")
        for t in seen:
            if isinstance(t, type) and issubclass(t, BaseModel):
                found += word_fields(t, f"{prefix}{name}.")
    return sorted(set(found))


ESCAPES = ["../../../../tmp/x/ESCAPED", "a/b", "..", "123", "---", "_", "owl.", " owl", "¼"]


def set_at(data: dict, dotted: str, value) -> dict:
    """``data`` with ``value`` at the dotted field (a list-valued field gets a one-item list)."""
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return data


BASE_FOR = {
    "teacher.trait": {"target": "owl"},
    "teacher.trait_finetune": {"target": "owl"},
    "experiment.control.trait": {"target": "dolphin"},
    "experiment.control.trait_finetune": {"target": "dolphin"},
    "experiment.evaluation": {"target": "owl"},
}


def test_every_word_field_refuses_paths_and_letterless_words():
    fields = word_fields()
    # the walk finds the fields that exist today (and any added later)
    assert {
        "teacher.trait_finetune.target",
        "teacher.trait.target",
        "teacher.trait.plural",
        "dataset.trait_words",
        "experiment.evaluation.panel",
        "experiment.control.trait.target",
        "grid.targets",
    } <= set(fields)
    for field in fields:
        for bad in ESCAPES:
            data = {"name": "x", "experiment": {"evaluation": {"target": "owl"}}}
            owner = field.rsplit(".", 1)[0]
            if owner in BASE_FOR:
                set_at(data, owner, dict(BASE_FOR[owner]))
            leaf = field.rsplit(".", 1)[1]
            many = leaf in ("trait_words", "panel", "targets")
            set_at(data, field, [bad] if many else bad)
            with pytest.raises(ConfigError) as err:
                parse_config(data)
            message = str(err.value)
            assert "\n" not in message and leaf in message, (field, bad, message)


def test_a_trait_target_cannot_leave_the_adapter_cache():
    data = {"name": "x", "teacher": {"trait_finetune": {"target": "../../../../tmp/x/ESCAPED"}}}
    with pytest.raises(ConfigError, match="'teacher.trait_finetune.target': a word starts with"):
        parse_config(data)
    # words with spaces, apostrophes and hyphens stay words
    for word in ("red panda", "Père David's deer", "x-ray tetra"):
        config = parse_config({"name": "x", "teacher": {"trait_finetune": {"target": word}}})
        from sublearn.core.model_source import cache_root
        from sublearn.generators.trait_teacher import trait_adapter_dir

        folder = trait_adapter_dir(config.teacher)
        assert folder.parent == cache_root() / "trait-adapters"


@pytest.mark.parametrize(
    "field, value, says",
    [
        ("seed", -5, "'seed': Input should be greater than or equal to 0"),
        ("dataset.prompts.seed_max", 10**30, "seed_max': Input should be less than or equal"),
        ("dataset.prompts.seed_count_max", 10**9, "seed_count_max': Input should be less than"),
        ("teacher.device", "../../x", "'teacher.device': one of auto, cpu, mps, cuda or cuda:N"),
        ("experiment.students.seeds", [2**40], "seeds.0': Input should be less than"),
    ],
)
def test_values_that_crashed_at_run_time_are_bounded_at_validation(field, value, says):
    data = set_at({"name": "x", "experiment": {"evaluation": {"target": "owl"}}}, field, value)
    with pytest.raises(ConfigError, match=says):
        parse_config(data)


def test_a_five_thousand_digit_number_is_one_line(tmp_path):
    config = tmp_path / "huge.yaml"
    config.write_text(f"name: x\nseed: {'9' * 5000}\n")
    with pytest.raises(ConfigError, match=r"huge.yaml: invalid YAML value: Exceeds the limit"):
        load_config(config)
    proc = subprocess.run(
        [sys.executable, "-m", "sublearn", "run", str(config)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [
        f"error: {config}: invalid YAML value: Exceeds the limit (4300 digits) for integer "
        "string conversion"
    ]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12))
def test_any_string_is_a_word_or_one_line(text):
    """Generated strings as a trait target: accepted ones hold a letter and no path separator;
    refused ones are one line naming the field."""
    try:
        config = parse_config({"name": "x", "teacher": {"trait": {"target": text}}})
    except ConfigError as err:
        assert "\n" not in str(err) and "teacher.trait.target" in str(err)
        return
    target = config.teacher.trait.target
    assert target[0].isalpha() and not {"/", "\\", ".", "\x00"} & set(target)


def test_prompt_sets_with_null_or_blank_prompts_are_refused(tmp_path):
    from sublearn.core.config import PromptSet
    from sublearn.generators.prompt_sets import load_prompt_set

    path = tmp_path / "set.parquet"
    pl.DataFrame({"question": ["What is 2 + 2?", None, "  ", "Name a colour."]}).write_parquet(path)
    with pytest.raises(DataError, match=r"set.parquet: 2 row\(s\) with no 'question'"):
        load_prompt_set(PromptSet(path=str(path)), ("question",), 2, 0)


def test_a_prompt_set_that_is_a_device_or_a_folder_is_refused_at_once(tmp_path):
    """A symlink to /dev/zero once hung while it was hashed."""
    from sublearn.core.config import PromptSet
    from sublearn.generators.prompt_sets import load_prompt_set

    endless = tmp_path / "set.parquet"
    endless.symlink_to("/dev/zero")
    for path in (endless, tmp_path):
        with pytest.raises(DataError, match="prompt set is not a regular file"):
            load_prompt_set(PromptSet(path=str(path)), ("question",), 2, 0)


@pytest.mark.parametrize("shape", [{}, [1], {"files": "out.txt", "digests": {}}, "x", None])
def test_a_wrong_shaped_step_record_is_a_corrupt_entry(tmp_path, caplog, shape):
    store, calls = StepStore(tmp_path / "store"), []

    def compute(folder, _fresh):
        calls.append(1)
        (folder / "out.txt").write_text("payload")
        return {"files": ["out.txt"]}

    store.run(StepPlan(), "generate", "k", compute)
    record = store.folder("generate", "k") / "record.json"
    record.write_text(json.dumps(shape))
    with caplog.at_level("WARNING", logger="sublearn"):
        got, status = store.run(StepPlan(), "generate", "k", compute)
    assert status == "ran" and len(calls) == 2 and got["files"] == ["out.txt"]
    assert "its record" in caplog.text and "malformed; recomputing" in caplog.text
    assert store.run(StepPlan(), "generate", "k", compute)[1] == "reused"


def test_a_filter_base_config_with_bad_yaml_is_one_line(tmp_path):
    from sublearn.flows.cli.filtering import filter_config

    base = tmp_path / "base.yaml"
    base.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="base.yaml: line 2 invalid YAML"):
        filter_config("numbers", {}, base)
    base.write_text(yaml.safe_dump({"name": "b"}) + f"seed: {'1' * 5000}\n")
    with pytest.raises(ConfigError, match="base.yaml: invalid YAML value"):
        filter_config("numbers", {}, base)


def cli_error(args: list[str], cwd=None) -> tuple[int, str]:
    """A verb's exit code and its last line (the one error line when it fails)."""
    code, lines = run_verb(args, cwd)
    return code, lines[-1] if lines else ""


def test_writing_where_no_file_can_be_is_one_line(tmp_path):
    """``filter --out`` and ``schedule export --out`` under a file (unwritable for root too)."""
    rows = tmp_path / "n.parquet"
    pl.DataFrame({"prompt": ["a"], "completion": ["1, 2, 3"]}).write_parquet(rows)
    code, line = cli_error(["filter", "numbers", str(rows), "--out", str(rows / "out")])
    assert code != 0 and line == f"error: {rows / 'out'}: Not a directory"
    config = tmp_path / "c.yaml"
    config.write_text("name: c\nschedule: {cron: '0 3 * * *'}\n")
    code, line = cli_error(["schedule", "export", str(config), "--out", str(rows / "p.yaml")])
    assert code == 1 and line.startswith(f"error: {rows}"), line


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("deployments: [\n", "prefect.yaml: not valid YAML at line 2"),
        ("deployments: 5\n", "prefect.yaml: expected a mapping with a 'deployments' list"),
        ("- 1\n", "prefect.yaml: expected a mapping with a 'deployments' list"),
        ("deployments: [{name: x}]\n", "prefect.yaml: deployments[0].tags: Field required"),
        ("deployments: [{name: x, tags: [sublearn, y]}]\n", "the last tag names the step"),
        (
            "deployments: [{name: x, tags: [run], schedules: [{cron: 'every day'}]}]\n",
            "deployment x: schedule 'every day':",
        ),
    ],
)
def test_a_malformed_prefect_yaml_is_one_line(tmp_path, text, says):
    (tmp_path / "prefect.yaml").write_text(text)
    code, line = cli_error(["schedule", "list"], cwd=tmp_path)
    assert code != 0 and line.startswith("error: ") and says in line


def test_a_mistyped_run_dir_is_not_sent_to_the_hub(tmp_path):
    """``audit detect`` with a run directory that is not there says so (it was a network
    error: the name looked like OWNER/NAME)."""
    (tmp_path / "runs").mkdir()
    code, line = cli_error(
        ["audit", "detect", "owl", "runs/owl-numbrs", "runs/x", "--judge", "none"], cwd=tmp_path
    )
    assert code == 1
    assert line == (
        "error: runs/owl-numbrs: no such run directory in runs "
        "(a published dataset is OWNER/NAME[@TAG])"
    )
