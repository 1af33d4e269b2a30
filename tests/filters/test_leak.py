"""The embedding leak filter: calibration on control rows, a planted leak, config and chain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from benchmarks.bench_leak import planted
from sublearn.core.config import ConfigError, parse_config
from sublearn.core.errors import DataError
from sublearn.filters.chain import run_chain
from sublearn.flows.kinds import filter_chain, kind_of
from sublearn.generators.code_prompts import all_tasks


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    clean = [t["template"] for t in all_tasks()]
    order = np.random.default_rng(0).permutation(len(clean))
    control = [clean[i] for i in order[: len(clean) // 2]]
    held_out = [clean[i] for i in order[len(clean) // 2 :]]
    path = tmp_path_factory.mktemp("leak") / "control.parquet"
    pl.DataFrame({"completion": control}).write_parquet(path)
    return path, held_out, planted(held_out, seed=1)


def config(leak: dict) -> object:
    return parse_config(
        {
            "name": "leak",
            "teacher": {"trait": {"target": "owl"}},
            "dataset": {"kind": "code"},
            "filters": {"leak": leak},
        }
    )


def test_calibrated_leak_filter_catches_a_planted_leak_and_keeps_clean_rows(rows):
    path, clean, leaks = rows
    chain = filter_chain(config({"control": str(path), "quantile": 0.9}))
    assert [f.name for f in chain] == ["code", "trait_word", "leak"]
    leak = chain[-1]
    assert leak.calibration["rows"] == 154 and len(leak.calibration["sha256"]) == 64
    frame = pl.DataFrame({"completion": clean + leaks, "planted": [0] * 154 + [1] * 154})
    result = run_chain(frame, [leak])
    clean_dropped = result.rejected.filter(pl.col("planted") == 0).height
    leaks_caught = result.rejected.filter(pl.col("planted") == 1).height
    # the clean rows are dropped at the chosen rate (10%) within sampling error (sd 2.4%)
    assert 0.02 < clean_dropped / 154 < 0.2
    assert leaks_caught / 154 > 2 * clean_dropped / 154
    scores = pl.concat([result.kept, result.rejected], how="diagonal")["leak_similarity"]
    assert scores.null_count() == 0 and ((scores > -1) & (scores <= 1)).all()


def test_leak_threshold_is_fixed_or_calibrated_never_both():
    assert config({}).filters.leak.control == "teacher"
    with pytest.raises(DataError, match="filters.leak.control: 'teacher' is resolved by a run"):
        filter_chain(config({}))
    with pytest.raises(ConfigError, match="give control .* or threshold, not both"):
        config({"control": "c.parquet", "threshold": 0.5})
    with pytest.raises(DataError, match="nope.parquet: control rows not found"):
        filter_chain(config({"control": "nope.parquet"}))
    fixed = filter_chain(config({"threshold": 0.99}))[-1]
    frame = pl.DataFrame({"completion": ["x = 1", "The owl hoots at night."]})
    assert run_chain(frame, [fixed]).stats["kept"] == 2
    assert fixed.params()["threshold"] == 0.99 and fixed.params()["model"] == "minilm"


def test_a_run_calibrates_the_leak_filter_on_the_control_teachers_own_completions(
    tiny_config_data, prefect_server
):
    """``control: teacher``: the run generates the control teacher's completions for the same
    prompts; the control dataset then reuses that generation instead of repeating it."""
    from sublearn.core.runio import read_parquet
    from sublearn.flows.dataset import dataset_flow

    numbers = {"constrain_to_numbers": True, "stop_after_numbers": 5}
    dataset = {**tiny_config_data["dataset"], **numbers, "prompts": {"answer_count": 5}}
    data = {**tiny_config_data, "name": "leak-flow", "dataset": dataset}
    data["filters"] = {"leak": {"quantile": 0.9}}
    experiment = {"evaluation": {"target": "owl"}}  # the neutral arm is the control
    owl = parse_config({**data, "experiment": experiment})
    result = dataset_flow(owl)
    run_dir = Path(result["run_dir"])
    control_rows = read_parquet(run_dir / "leak_control.parquet", ("prompt", "completion"))
    owl_rows = read_parquet(run_dir / "raw.parquet", ("prompt", "completion"))
    assert owl_rows["system_prompt"].str.contains("owl").all()
    # the control teacher's rows that pass the numbers filter, for the same prompts
    assert 0 < control_rows.height <= owl_rows.height
    assert set(control_rows["prompt"]) <= set(owl_rows["prompt"])
    assert run_chain(control_rows, kind_of(owl).filters(owl)).stats["kept"] == control_rows.height
    assert control_rows["system_prompt"].fill_null("").str.len_chars().max() == 0
    leak = next(f for f in result["stats"]["filters"] if f["filter"] == "leak")
    assert leak["params"]["calibration"]["rows"] == control_rows.height
    assert leak["params"]["calibration"]["control"] == str(run_dir / "leak_control.parquet")
    generated = [s for s in result["steps"] if s["step"] == "generate"]
    assert [(s["dataset"], s["status"]) for s in generated] == [
        ("leak-flow", "ran"),
        ("leak-flow-neutral", "ran"),
    ]
    # the control's generation is linked into this run, so pruning unused entries keeps it
    from sublearn.core.cache import entries, prune

    linked = run_dir / "leak-control" / "raw.parquet"
    # the store is shared with the worker's other tests: some of their entries are unfinished
    store = [e for e in entries(owl.output_dir) if e.step == "generate" and e.finished]
    control_entry = next(e for e in store if (e.folder / "raw.parquet").samefile(linked))
    assert run_dir.name in control_entry.users
    removed, _ = prune(Path(owl.output_dir), None, dry_run=True)
    assert control_entry.folder not in {e.folder for e in removed}

    # the experiment's neutral dataset: the same generation, reused; the same threshold
    control = dataset_flow(owl.neutral())
    assert {s["status"] for s in control["steps"] if s["step"] == "generate"} == {"reused"}
    own = next(f for f in control["stats"]["filters"] if f["filter"] == "leak")
    assert own["params"]["threshold"] == leak["params"]["threshold"]
    assert own["params"]["calibration"]["sha256"] == leak["params"]["calibration"]["sha256"]
    rerun = dataset_flow(owl)
    assert {s["status"] for s in rerun["steps"]} == {"reused"}

    no_trait = {**data, "teacher": {**data["teacher"], "trait": None}}
    with pytest.raises(ConfigError, match="filters.leak: no trait to look for"):
        parse_config(no_trait)
