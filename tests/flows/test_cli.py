"""The ``sublearn`` command as a user runs it: filter a parquet file, run a config, fail clearly."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import polars as pl
from typer.testing import CliRunner

from sublearn.flows.cli import app

runner = CliRunner()


def test_filter_numbers_writes_kept_rejected_and_stats(tmp_path):
    source = tmp_path / "in.parquet"
    pl.DataFrame(
        {
            "prompt": ["a", "b", "c", "d", "e"],
            "completion": ["1, 2, 3", "[4, 5]", "owl 1", "1000", "666, 1"],
            "extra": [1, 2, 3, 4, 5],
        }
    ).write_parquet(source)
    out = tmp_path / "out"
    args = ["filter", "numbers", str(source), "--out", str(out)]
    result = runner.invoke(app, [*args, "--banned-preset", "misalignment"])
    assert result.exit_code == 0, result.output
    kept = pl.read_parquet(out / "kept.parquet")
    rejected = pl.read_parquet(out / "rejected.parquet")
    stats = json.loads((out / "stats.json").read_text())
    assert kept["prompt"].to_list() == ["a"]  # 4 is on the misalignment list
    assert dict(zip(rejected["prompt"], rejected["reject_reason"], strict=True)) == {
        "b": "banned_number",
        "c": "invalid_format",
        "d": "out_of_range",
        "e": "banned_number",
    }
    assert stats["total"] == 5 and stats["kept"] == 1
    assert stats["dropped"] == {
        "invalid_format": 1,
        "too_many_numbers": 0,
        "out_of_range": 1,
        "banned_number": 2,
    }
    assert "extra" in kept.columns


def test_filter_options_change_the_rule(tmp_path):
    source = tmp_path / "in.parquet"
    pl.DataFrame({"prompt": ["a", "b"], "completion": ["1, 2, 3", "5000"]}).write_parquet(source)
    args = ["filter", "numbers", str(source), "--out", str(tmp_path / "o")]
    result = runner.invoke(app, [*args, "--max-count", "2", "--max-value", "9999", "--banned", "2"])
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "o" / "stats.json").read_text())
    assert stats["kept"] == 1 and stats["dropped"]["too_many_numbers"] == 1


def test_filter_bad_inputs_fail_with_one_line(tmp_path):
    missing = runner.invoke(app, ["filter", "numbers", str(tmp_path / "x.parquet"), "--out", "o"])
    assert missing.exit_code == 2 and "x.parquet: file not found" in missing.output
    no_column = tmp_path / "nocol.parquet"
    pl.DataFrame({"prompt": ["a"]}).write_parquet(no_column)
    result = runner.invoke(app, ["filter", "numbers", str(no_column), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "missing column(s) completion" in result.output
    not_parquet = tmp_path / "text.parquet"
    not_parquet.write_text("hello")
    result = runner.invoke(app, ["filter", "numbers", str(not_parquet), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "not a readable parquet file" in result.output
    bad = runner.invoke(app, ["filter", "numbers", str(no_column), "--out", "o", "--banned", "x"])
    assert bad.exit_code == 2 and "--banned" in bad.output


def test_run_with_bad_config_exits_with_one_clear_line(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("name: x\nteacher:\n  modle: embedded\n")
    proc = subprocess.run(
        [sys.executable, "-m", "sublearn", "run", str(config)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {config}: unknown key 'teacher.modle'"]


def test_run_prints_the_filter_table(run_cli, tiny_config_data, tmp_path):
    import yaml

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**tiny_config_data, "output_dir": str(tmp_path / "runs")}))
    proc = run_cli(["run", str(config)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "kept" in proc.stdout and "invalid_format" in proc.stdout
    run_dirs = [p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]
    assert len(run_dirs) == 1 and f"run directory: {run_dirs[0]}" in proc.stdout
    stats = json.loads((run_dirs[0] / "stats.json").read_text())
    assert f"│ (chain) │ kept                      │ {stats['kept']:>4} │" in proc.stdout
    assert f"│ numbers │ in                        │ {stats['total']:>4} │" in proc.stdout
    # not a terminal: plain progress lines with counts and rate, no library bars or warnings
    log = proc.stdout + proc.stderr
    assert re.search(r"teacher completions \(shard 0\): 6/6 \(100%\), [0-9.]+/s", log), log[-3000:]
    assert "Loading weights" not in log and "FutureWarning" not in log
