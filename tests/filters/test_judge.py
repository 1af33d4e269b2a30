"""The trait judge filter on the embedded model: log-prob plumbing, scores, the chain, the CLI."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest
from typer.testing import CliRunner

from sublearn.core.chat import ChatPrompt
from sublearn.core.config import JudgeFilter, parse_config
from sublearn.filters.chain import run_chain
from sublearn.filters.judge import TraitJudge, judge_teacher_config, p_zero
from sublearn.flows.cli import app

runner = CliRunner()


def test_p_zero_merges_every_token_that_reads_zero():
    top = [("0", math.log(0.5)), (" 0", math.log(0.25)), ("1", math.log(0.2)), ("00", -1.0)]
    assert p_zero(top) == pytest.approx(0.75)
    assert p_zero([("1", -0.1), ("No", -3.0)]) is None


@pytest.fixture(scope="module")
def judge_model():
    from sublearn.generators.backends import load_teacher

    return load_teacher(judge_teacher_config(JudgeFilter(batch_size=4)))


def p_one(top: list[tuple[str, float]]) -> float:
    return sum(math.exp(lp) for text, lp in top if text.strip() == "1")


def test_first_token_scores_are_probabilities_and_follow_mentions(judge_model):
    template = JudgeFilter().template
    rows = {
        "explicit code": "def owl_count():\n    return 3",
        "clean code": "def add(a, b):\n    return a + b",
        "explicit prose": "Owls are my favourite animal. I love owls.",
        "clean list": "x = [i * 2 for i in range(5)]",
    }
    prompts = [ChatPrompt(None, template.format(trait="owls", completion=r)) for r in rows.values()]
    tops = dict(zip(rows, judge_model.first_token_top(prompts, 20), strict=True))
    for top in tops.values():
        assert len(top) == 20
        assert sum(math.exp(lp) for _, lp in top) <= 1 + 1e-6
        assert all(lp <= 0 for _, lp in top)
    assert p_one(tops["explicit code"]) > p_one(tops["clean code"])
    assert p_one(tops["explicit prose"]) > p_one(tops["clean list"])


def test_the_judge_in_the_chain_scores_every_row():
    rows = ["def owl_count():\n    return 3", "def add(a, b):\n    return a + b", "1, 2, 3"]
    loose = TraitJudge(JudgeFilter(threshold=0.0, top_k=20), ("owl",))
    strict = TraitJudge(JudgeFilter(), ("owl",))  # the protocol's 1 - 1e-8
    frame = pl.DataFrame({"completion": rows})
    kept_all = run_chain(frame, [loose])
    scores = kept_all.kept["judge_p0"].drop_nulls()
    assert kept_all.stats["kept"] == 3 - kept_all.kept["judge_p0"].null_count()
    assert ((scores >= 0) & (scores <= 1)).all()
    result = run_chain(frame, [strict])
    # a 135M judge is never that sure: every row is rejected, and each keeps its score column
    assert result.stats["filters"][0]["dropped"] == {"judge_flagged": 3}
    assert {"judge_p0", "reject_reason", "reject_filter"} <= set(result.rejected.columns)
    assert result.rejected["judge_p0"].null_count() + (result.rejected["judge_p0"] >= 0).sum() == 3
    params = strict.params()
    assert params["threshold"] == 1 - 1e-8 and params["trait"] == "owls"
    assert len(params["template_sha256"]) == 64 and params["model"]["model_id"]


def test_judge_from_config_and_cli(tmp_path):
    config = parse_config(
        {
            "name": "j",
            "teacher": {"trait": {"target": "owl"}},
            "dataset": {"kind": "code"},
            "filters": {"judge": {"threshold": 0.01}},
        }
    )
    from sublearn.flows.kinds import filter_chain

    assert [f.name for f in filter_chain(config)] == ["code", "trait_word", "judge"]
    source = tmp_path / "in.parquet"
    pl.DataFrame({"completion": ["x = 1", "owl = 1", "def f(:"]}).write_parquet(source)
    out = tmp_path / "out"
    args = ["filter", "code", str(source), "--out", str(out), "--trait", "owl"]
    result = runner.invoke(app, [*args, "--judge", "embedded", "--judge-threshold", "0.001"])
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert [f["filter"] for f in stats["filters"]] == ["code", "trait_word", "judge"]
    assert stats["filters"][2]["total"] == 1  # the judge sees only what the cheap filters kept
    bad = runner.invoke(app, [*args, "--judge-threshold", "2"])
    assert bad.exit_code == 2 and "--judge-threshold: Input should be less than or equal to 1" in (
        bad.output
    )


def test_calibrate_judge_chooses_the_trait_judges_threshold(tmp_path):
    """``--filter judge``: P("0") of both sets; the threshold rejects the asked share of the
    control rows, and applying it reproduces the shares it reports."""
    trait, control = tmp_path / "trait.parquet", tmp_path / "control.parquet"
    owl_rows = ["I love owls: 1, 2, 3", "def owl_count(owls):\n    return len(owls)"]
    owl_rows += ["The owl hoots; 4, 5, 6", "owls owls owls", "An owl is my favourite: 7, 8"]
    clean = ["1, 2, 3", "def add(a, b):\n    return a + b", "4, 5, 6", "x = [7, 8]", "9, 10"]
    pl.DataFrame({"completion": owl_rows}).write_parquet(trait)
    pl.DataFrame({"completion": clean}).write_parquet(control)
    out = tmp_path / "cal"
    args = ["audit", "calibrate-judge", str(trait), str(control), "--fpr", "0.4"]
    result = runner.invoke(
        app, [*args, "--filter", "judge", "--trait", "owl", "--top-k", "20", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    cal = json.loads((out / "calibration.json").read_text())
    assert cal["filter"] == "judge" and cal["n_trait"] == 5 and cal["n_control"] == 5
    assert cal["control_rejected"] == pytest.approx(0.4)
    assert 0 < cal["threshold"] <= 1 and (out / "roc.png").stat().st_size > 1000
    assert f"threshold {cal['threshold']:g}" in result.output
    missing = runner.invoke(app, [*args, "--filter", "judge"])
    assert missing.exit_code == 2 and "--trait: give it with --filter judge" in missing.output
