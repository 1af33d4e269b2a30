"""A real generation run killed with SIGKILL mid-way, then resumed by the same command: the
batches finished before the kill are not redone, and the dataset equals an uninterrupted run's
(same prompts, no lost and no duplicated rows). Part of the backend contract: on the torch
decode loop, transformers' generate and an OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import polars as pl
import pytest
import yaml

from sublearn.core.config import load_config
from sublearn.flows.dataset import dataset_flow
from tests.conftest import wait_until
from tests.generators.test_backend_contract import BACKENDS, on_backend

BATCHES = 6


def write_config(data: dict, out: Path, folder: Path) -> Path:
    data = {
        **data,
        "name": "resume-owl",
        "output_dir": str(out),
        "teacher": {**data["teacher"], "batch_size": 2},
        "dataset": {"kind": "numbers", "n_prompts": 2 * BATCHES},
    }
    path = folder / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def shards(out: Path) -> dict[str, tuple[int, int]]:
    """Each finished shard's inode and modification time: a redone batch changes both."""
    found = {}
    for shard in out.glob(".steps/generate/*/shards/shard-*.parquet"):
        stat = shard.stat()
        found[shard.name] = (stat.st_ino, stat.st_mtime_ns)
    return found


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_generation_resumes_without_redoing_batches(
    backend, request, spawn_cli, run_cli, tiny_config_data, tmp_path
):
    tiny_config_data = on_backend(tiny_config_data, backend, request)
    killed_out, whole_out = tmp_path / "killed", tmp_path / "whole"
    config = write_config(tiny_config_data, killed_out, tmp_path)
    proc = spawn_cli(["run", str(config)], tmp_path / "killed.log")
    wait_until(lambda: len(shards(killed_out)) >= 2 or proc.poll() is not None)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = shards(killed_out)
    assert 2 <= len(before) < BATCHES, f"kill landed after {len(before)} of {BATCHES} batches"
    assert not list(killed_out.glob(".steps/generate/*/record.json"))  # the step never finished

    resumed = run_cli(["run", str(config)])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    run_dir = next(p for p in killed_out.iterdir() if not p.name.startswith("."))
    generate = next(
        e for e in json.loads((run_dir / "steps.json").read_text()) if e["step"] == "generate"
    )
    assert generate["status"] == "ran"
    assert generate["batches_reused"] == len(before)
    assert generate["batches_generated"] == BATCHES - len(before)
    after = shards(killed_out)
    assert {name: after[name] for name in before} == before  # finished batches not redone
    assert len(after) == BATCHES

    # the uninterrupted reference, in this process (the same flow the command runs)
    whole = dataset_flow(load_config(write_config(tiny_config_data, whole_out, tmp_path)))
    whole_dir = Path(whole["run_dir"])
    raw, reference = (pl.read_parquet(d / "raw.parquet") for d in (run_dir, whole_dir))
    assert raw["prompt_index"].to_list() == list(range(2 * BATCHES))  # none lost, none twice
    assert raw.equals(reference)
    kept, kept_reference = (pl.read_parquet(d / "kept.parquet") for d in (run_dir, whole_dir))
    assert kept.equals(kept_reference)
