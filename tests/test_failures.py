"""Failures end a real run with one clear line and keep every earlier output: a bad adapter
path, a full disk (a file-size limit on the process), and Ctrl-C mid-generation, after which
the same command resumes."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import error_line, wait_until


def snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(run_cli, tiny_config_data, tmp_path_factory):
    """A finished tiny run whose outputs later failures must leave alone."""
    folder = tmp_path_factory.mktemp("failures")
    data = {**tiny_config_data, "name": "fail-owl", "output_dir": str(folder / "runs")}
    config = folder / "good.yaml"
    config.write_text(yaml.safe_dump(data))
    proc = run_cli(["run", str(config)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    return data, folder


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    """The error lines, each without the log file a failure inside a flow names."""
    return [error_line(line) for line in proc.stderr.splitlines() if line.startswith("error:")]


def test_bad_adapter_path_is_one_line_and_keeps_outputs(run_cli, finished):
    data, folder = finished
    before = snapshot(folder / "runs")
    bad = {**data, "teacher": {**data["teacher"], "adapter": str(folder / "no-adapter")}}
    config = folder / "bad-adapter.yaml"
    config.write_text(yaml.safe_dump(bad))
    proc = run_cli(["run", str(config)])
    assert proc.returncode == 1
    assert error_lines(proc) == [f"error: {folder / 'no-adapter'}: adapter folder not found"]
    after = snapshot(folder / "runs")
    assert {k: after[k] for k in before} == before


@pytest.mark.parametrize("kind", ["missing", "not-a-model"])
def test_a_model_that_cannot_be_loaded_is_one_line(run_cli, finished, kind):
    data, folder = finished
    before = snapshot(folder / "runs")
    model = folder / kind
    if kind == "not-a-model":
        model.mkdir(exist_ok=True)
    bad = {**data, "teacher": {**data["teacher"], "model": str(model)}}
    config = folder / f"{kind}.yaml"
    config.write_text(yaml.safe_dump(bad))
    proc = run_cli(["run", str(config)])
    assert proc.returncode == 1
    reason = (
        "model folder not found" if kind == "missing" else "not a model folder (no config.json)"
    )
    assert error_lines(proc) == [f"error: {model}: {reason}"]
    after = snapshot(folder / "runs")
    assert {k: after[k] for k in before} == before


def test_full_disk_is_one_line_and_keeps_outputs(cli_env, finished):
    data, folder = finished
    before = snapshot(folder / "runs")
    changed = {**data, "dataset": {**data["dataset"], "filter": {"max_count": 3}}}
    config = folder / "changed.yaml"
    config.write_text(yaml.safe_dump(changed))

    def no_room() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))

    proc = subprocess.run(
        [sys.executable, "-m", "sublearn", "run", str(config)],
        env=cli_env,
        capture_output=True,
        text=True,
        preexec_fn=no_room,
        timeout=600,
    )
    assert proc.returncode == 1
    lines = error_lines(proc)
    assert len(lines) == 1 and lines[0].endswith(": File too large"), proc.stderr[-2000:]
    after = snapshot(folder / "runs")
    assert {k: after[k] for k in before} == before
    assert not [p for p in after if p.endswith(".tmp")]  # no half-written file left


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_to_the_process_group_stops_at_once_and_the_next_run_resumes(
    cli_env, run_cli, finished, sig
):
    """Ctrl-C in a terminal (SIGINT to the whole group) and a scheduler's SIGTERM, with
    Prefect's temporary server in the same group: one line within seconds, then resume."""
    data, folder = finished
    teacher = {**data["teacher"], "batch_size": 1}
    name = sig.name.lower()
    more = {**data, "teacher": teacher, "output_dir": str(folder / name)}
    config = folder / f"{name}.yaml"
    config.write_text(yaml.safe_dump(more))
    env = {k: v for k, v in cli_env.items() if k != "PREFECT_API_URL"}  # its own server
    env["PREFECT_HOME"] = str(folder / f"prefect-{name}")
    log = folder / f"{name}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sublearn", "run", str(config)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    shards = folder / name / ".steps" / "generate"
    wait_until(lambda: list(shards.glob("*/shards/*.parquet")) or proc.poll() is not None)
    os.killpg(proc.pid, sig)
    signalled = time.monotonic()
    proc.wait(timeout=60)
    stopped_after = time.monotonic() - signalled
    output = log.read_text()
    assert proc.returncode == 128 + sig, output[-2000:]
    assert stopped_after < 10, f"{stopped_after:.1f} s"
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: interrupted; finished steps and generation batches are kept: rerun to resume"
    ]
    assert "Traceback" not in output
    done = len(list(shards.glob("*/shards/*.parquet")))

    again = run_cli(["run", str(config)])
    assert again.returncode == 0, again.stderr[-2000:]
    run_dir = next(p for p in (folder / name).iterdir() if not p.name.startswith("."))
    generate = next(
        e for e in json.loads((run_dir / "steps.json").read_text()) if e["step"] == "generate"
    )
    assert generate["batches_reused"] == done >= 1
    assert generate["batches_reused"] + generate["batches_generated"] == 6


def test_a_corrupt_shard_is_named_in_one_line(run_cli, finished):
    data, folder = finished
    config = folder / "good.yaml"
    generate = folder / "runs" / ".steps" / "generate"
    shard = sorted(generate.glob("*/shards/*.parquet"))[0]
    record = shard.parent.parent / "record.json"
    saved = record.read_bytes(), shard.read_bytes()
    record.unlink()  # as if killed before the step finished
    shard.chmod(0o644)
    shard.write_bytes(b"not parquet")
    try:
        proc = run_cli(["run", str(config)])
        assert proc.returncode == 1
        assert error_lines(proc) == [
            f"error: {shard}: not a readable parquet file (ComputeError)"
        ], proc.stderr[-2000:]
    finally:
        record.write_bytes(saved[0])
        shard.write_bytes(saved[1])


def test_a_full_disk_under_filter_and_download_is_one_line(cli_env, finished, tmp_path):
    """polars' own error for a write that cannot finish becomes the file and the reason."""
    from sublearn.core.config import parse_config

    data, _ = finished
    run_dir = parse_config(data).run_dir()  # the finished run's, whatever else ran beside it

    def no_room() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))

    out = tmp_path / "refiltered"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sublearn",
            "filter",
            "numbers",
            str(run_dir / "kept.parquet"),
            "--out",
            str(out),
        ],
        env=cli_env,
        capture_output=True,
        text=True,
        preexec_fn=no_room,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert error_lines(proc) == [f"error: {out / 'kept.parquet'}: File too large"]
    assert "Traceback" not in proc.stderr
    assert not [p for p in out.iterdir() if p.name != ".gitkeep"]  # nothing half-written


def killed_then_rerun(args: list[str], env: dict, kill_after: float) -> subprocess.Popen:
    """Start a verb in its own process group and kill -9 the whole group after ``kill_after``
    seconds (or let it end first)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sublearn", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    return proc


@pytest.mark.parametrize("verb", ["run", "filter"])
def test_kill_9_at_a_random_point_then_the_rerun_gives_the_same_outputs(
    cli_env, run_cli, finished, verb
):
    """Each verb killed at a random moment of its work (seeded, and said on failure), then
    run again: it ends well and its outputs equal an uninterrupted run's."""
    import random

    import polars as pl

    from sublearn.core.config import parse_config

    data, folder = finished
    reference = parse_config(data).run_dir()  # the finished run's (other tests add their own)
    out = folder / f"killed-{verb}"
    if verb == "run":
        config = folder / "killed.yaml"
        config.write_text(yaml.safe_dump({**data, "output_dir": str(out)}))
        args = ["run", str(config)]
    else:
        raw = str(reference / "raw.parquet")
        whole = run_cli(["filter", "numbers", raw, "--out", str(folder / "filtered-whole")])
        assert whole.returncode == 0, whole.stderr[-2000:]
        reference = folder / "filtered-whole"
        args = ["filter", "numbers", raw, "--out", str(out)]
    env = {k: v for k, v in cli_env.items() if k != "PREFECT_API_URL"}  # its own server
    env["PREFECT_HOME"] = str(folder / f"prefect-killed-{verb}")
    seed = random.randrange(10**6)
    kill_after = random.Random(seed).uniform(1.0, 20.0 if verb == "run" else 6.0)
    killed = killed_then_rerun(args, env, kill_after)
    again = run_cli(args)
    said = f"(killed after {kill_after:.1f} s, seed {seed}, exit {killed.returncode})"
    assert again.returncode == 0, f"{said}\n{again.stderr[-2000:]}"
    if verb == "run":
        got = out / reference.name
        assert got.is_dir(), f"{said}: {sorted(p.name for p in out.iterdir())}"
    else:
        got = out
    for name in ("kept.parquet", "rejected.parquet"):
        expected = pl.read_parquet(reference / name)
        assert pl.read_parquet(got / name).equals(expected), f"{name} {said}"
