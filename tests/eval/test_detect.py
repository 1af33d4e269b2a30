"""The detectability audit: transparent classifiers with intervals, tokens, the pairwise judge."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
from typer.testing import CliRunner

from sublearn.eval.detect import holm, ngram_audit
from sublearn.flows.cli import app

runner = CliRunner()


def number_rows(rng: np.random.Generator, n: int, favourite: int | None, share: float) -> list[str]:
    rows = []
    for _ in range(n):
        numbers = rng.integers(100, 1000, size=8)
        if favourite is not None and rng.random() < share:
            numbers[rng.integers(8)] = favourite
        rows.append(", ".join(str(x) for x in numbers))
    return rows


def test_a_planted_frequency_shift_is_found_and_named():
    rng = np.random.default_rng(0)
    trait = number_rows(rng, 150, favourite=777, share=0.6)
    control = number_rows(rng, 150, favourite=None, share=0.0)
    audit = ngram_audit(trait, control, seed=0)
    assert audit["auc"]["low"] > 0.65
    assert audit["tokens"][0]["token"] == "777" and audit["tokens"][0]["p_holm"] < 1e-6
    assert audit["towards_trait"][0][0].startswith("777") or "777" in audit["towards_trait"][0][0]


def test_two_samples_of_one_distribution_cover_chance():
    rng = np.random.default_rng(1)
    a = number_rows(rng, 150, None, 0.0)
    b = number_rows(rng, 150, None, 0.0)
    audit = ngram_audit(a, b, seed=0)
    assert audit["auc"]["low"] < 0.5 < audit["auc"]["high"]
    assert all(t["p_holm"] > 0.05 for t in audit["tokens"])


def test_rows_both_teachers_wrote_do_not_push_the_auc_below_chance():
    """Teachers sharing a sampling seed often write identical rows; split across folds, each
    would be learnt with one label and tested with the other (AUC 0.13 here, ungrouped)."""
    rng = np.random.default_rng(3)
    shared = number_rows(rng, 100, None, 0.0)
    a = shared + number_rows(rng, 60, None, 0.0)
    b = shared + number_rows(rng, 60, None, 0.0)
    audit = ngram_audit(a, b, seed=0)
    assert audit["auc"]["low"] < 0.5 < audit["auc"]["high"]


def test_holm_correction():
    adjusted = holm(np.array([0.01, 0.04, 0.03, 0.5]))
    assert adjusted.tolist() == [0.04, 0.09, 0.09, 0.5]


def test_detect_command_on_run_directories(tmp_path):
    rng = np.random.default_rng(2)
    prompts = [f"p{i}" for i in range(40)]
    for name, favourite in (("trait", 777), ("control", None)):
        folder = tmp_path / name
        folder.mkdir()
        rows = number_rows(rng, 40, favourite, 0.8)
        pl.DataFrame({"prompt": prompts, "completion": rows}).write_parquet(folder / "kept.parquet")
    out = tmp_path / "out"
    args = ["audit", "detect", "owl", str(tmp_path / "trait"), str(tmp_path / "control")]
    result = runner.invoke(
        app, [*args, "--out", str(out), "--embed", "none", "--judge", "embedded"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "detect.json").read_text())
    assert set(report["auc"]) >= {"mean", "low", "high"} and report["auc"]["low"] > 0.5
    pair = report["pairwise"]
    assert pair["pairs"] == 40 and pair["low"] <= pair["accuracy"] <= pair["high"]
    assert "verdict: the trait rows CAN be told apart" in result.output
    assert (out / "detect.png").stat().st_size > 1000
    missing = runner.invoke(
        app, ["audit", "detect", "owl", str(tmp_path / "nope"), "x", "--judge", "none"]
    )
    assert missing.exit_code == 1
    assert f"{tmp_path / 'nope'}: no such run directory in {tmp_path}" in missing.output
