"""``--set key.path=value``: one field of a config, validated like the file, part of its hash,
recorded in the run's config.yaml (issue 27 item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sublearn.core.config import ConfigError, load_config
from sublearn.core.config.overrides import with_overrides
from tests.conftest import error_line

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "owl-numbers-dataset.yaml"


def test_an_override_is_validated_and_changes_the_hash():
    plain = load_config(EXAMPLE)
    big = load_config(EXAMPLE, ["dataset.n_prompts=30000", "teacher.sampling.top_p=0.9"])
    assert (big.dataset.n_prompts, big.teacher.sampling.top_p) == (30000, 0.9)
    assert big.config_hash() != plain.config_hash()
    again = load_config(EXAMPLE, ["dataset.n_prompts=512", "dataset.n_prompts=30000"])
    assert again.dataset.n_prompts == 30000  # the later override wins
    assert again.config_hash() == load_config(EXAMPLE, ["dataset.n_prompts=30000"]).config_hash()
    mapped = load_config(EXAMPLE, ["filters={judge: {top_k: 20}}"])  # a value is YAML
    assert mapped.filters.judge.top_k == 20


def test_mappings_on_the_way_are_created_and_the_data_is_not_changed():
    data = {"teacher": {"model": "embedded"}}
    out = with_overrides(data, ["teacher.sampling.top_p=0.5", "dataset.trait_words=[a, b]"])
    assert out == {
        "teacher": {"model": "embedded", "sampling": {"top_p": 0.5}},
        "dataset": {"trait_words": ["a", "b"]},
    }
    assert data == {"teacher": {"model": "embedded"}}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("dataset.n_prompts", "--set dataset.n_prompts: expected KEY.PATH=VALUE"),
        ("dataset..n=1", "--set dataset..n=1: expected KEY.PATH=VALUE"),
        ("seed.value=3", "--set seed.value: seed is not a mapping"),
        ("dataset.n_prompts=[1", "--set dataset.n_prompts: value '[1' is not valid YAML"),
        ("dataset.n_prompts=-5", "(with --set): field 'dataset.n_prompts'"),
        ("dataset.n_promts=5", "(with --set): unknown key 'dataset.n_promts'"),
    ],
)
def test_a_bad_override_is_one_line_naming_it(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(EXAMPLE, [override])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_run_records_the_overridden_config(run_cli, tmp_path):
    sets = ["--set", f"output_dir={tmp_path}", "--set", "dataset.n_prompts=7"]
    proc = run_cli(["run", str(EXAMPLE), *sets, "--to", "prompts"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_dir = next(p for p in tmp_path.iterdir() if not p.name.startswith("."))
    expected = load_config(EXAMPLE, [f"output_dir={tmp_path}", "dataset.n_prompts=7"])
    assert run_dir == expected.run_dir()
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["dataset"]["n_prompts"] == 7
    bad = run_cli(["run", str(EXAMPLE), "--set", "dataset.kind=poems", "--to", "prompts"])
    assert bad.returncode == 2
    assert error_line(bad.stderr).startswith(f"error: {EXAMPLE} (with --set): field 'dataset")
