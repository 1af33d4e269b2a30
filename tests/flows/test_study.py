"""A study over a grid: one flow, one experiment per cell, shared steps made once. Its own
file so that the suite's workers (``--dist loadfile``) can run it beside the tiny experiment's
tests instead of after them."""

from __future__ import annotations

import pytest

from sublearn.core.config import parse_config
from tests.conftest import TEST_PANEL


def test_study_over_a_grid_of_rows_is_one_flow_with_shared_steps(prefect_server, tmp_path):
    """`sublearn run` on a config with a grid: one experiment per cell, the datasets, base and
    teacher evaluations made once and shared; the study's table and dose-response plot."""
    from sublearn.flows.study import study_flow

    config = parse_config(
        {
            "name": "tiny-study",
            "seed": 5,
            "output_dir": str(tmp_path),
            "teacher": {
                "batch_size": 8,
                "trait": {"target": "owl"},
                "sampling": {"max_new_tokens": 32},
            },
            "dataset": {"n_prompts": 16, "constrain_to_numbers": True},
            "experiment": {
                "students": {"epochs": 1, "batch_size": 2, "grad_accumulation": 1},
                "evaluation": {
                    "target": "owl",
                    "panel": TEST_PANEL,
                    "questions": 2,
                    "heldout_questions": 2,
                    "samples_per_question": 2,
                },
            },
            "grid": {"rows": [1, 2]},
        }
    )
    outcome = study_flow(config)
    cells = outcome["study"]["cells"]
    assert [c["rows_per_student"] for c in cells] == [1, 2]
    assert all(c["against"] == "neutral" for c in cells)
    ran = [(e["step"], e["dataset"]) for e in outcome["steps"] if e["status"] == "ran"]
    reused = [(e["step"], e["dataset"]) for e in outcome["steps"] if e["status"] == "reused"]
    # the arms' kept rows differ (with 8 prompts they once came out the same, and two students
    # on the same rows are rightly one cached step)
    kept = [(arm.run_dir() / "kept.parquet").read_bytes() for arm in config.arms().values()]
    assert kept[0] != kept[1]
    assert sum(step == "generate" for step, _ in ran) == 2  # trait and neutral, once each
    assert sum(step == "finetune" for step, _ in ran) == 4  # two arms x two cells
    assert ("evaluate", "base") in reused and ("evaluate", "teacher") in reused
    folder = config.study_dir()
    assert (folder / "dose-response.png").read_bytes()[:4] == b"\x89PNG"
    study = (folder / "study.md").read_text()
    assert "| owl | sampled | 1 | neutral |" in study and "| owl | sampled | 2 | neutral |" in study
    assert all(c["placebo_rank"].endswith(f"/{len(TEST_PANEL)}") for c in cells)
    # the deployment entry point (what a schedule runs) runs the same study: every cell
    from sublearn.core.config import dump_config
    from sublearn.flows.deployments import run_config

    path = tmp_path / "study.yaml"
    path.write_text(dump_config(config))
    scheduled = run_config(str(path))
    assert [c["rows_per_student"] for c in scheduled["study"]["cells"]] == [1, 2]
    assert {e["status"] for e in scheduled["steps"] if e["step"] != "report"} == {"reused"}
    # a cell asking for more rows than an arm kept fails in one line naming the field
    too_many = config.model_copy(update={"grid": config.grid.model_copy(update={"rows": (99,)})})
    with pytest.raises(Exception, match="experiment.students.rows: 99 asked, but the trait"):
        study_flow(too_many)
