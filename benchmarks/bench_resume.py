"""Kill a real dataset run with SIGKILL after some generation batches, resume it with the same
command, and compare with an uninterrupted run of the same config (the baseline, same session).

    python benchmarks/bench_resume.py examples/owl-numbers-dataset.yaml --kill-after 8

Prints batches done before the kill, batches redone, rows lost, rows duplicated, whether the
datasets are equal, and the wall time of the resumed run against the uninterrupted one.
Run it against a Prefect server (PREFECT_API_URL) to keep start-up out of the times.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import yaml


def shard_files(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in out.glob(".steps/generate/*/shards/*.parquet")}


def sublearn(config: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "sublearn", "run", str(config)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config", type=Path)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--kill-after", type=int, default=8, help="batches before SIGKILL")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-resume-"))
    data = yaml.safe_load(args.config.read_text())
    data["teacher"]["batch_size"] = args.batch_size
    configs = {}
    for name in ("killed", "whole"):
        configs[name] = work / f"{name}.yaml"
        configs[name].write_text(yaml.safe_dump({**data, "output_dir": str(work / name)}))

    whole_seconds = sublearn(configs["whole"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "sublearn", "run", str(configs["killed"])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    while len(shard_files(work / "killed")) < args.kill_after and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = shard_files(work / "killed")
    resume_seconds = sublearn(configs["killed"])
    after = shard_files(work / "killed")

    run_dir = {
        n: next(p for p in (work / n).iterdir() if not p.name.startswith(".")) for n in configs
    }
    raw = pl.read_parquet(run_dir["killed"] / "raw.parquet")
    reference = pl.read_parquet(run_dir["whole"] / "raw.parquet")
    steps = json.loads((run_dir["killed"] / "steps.json").read_text())
    generate = next(e for e in steps if e["step"] == "generate")
    expected = set(reference["prompt_index"])
    result = {
        "batches_total": len(after),
        "batches_before_kill": len(before),
        "batches_redone": sum(after[name] != mtime for name, mtime in before.items()),
        "batches_generated_on_resume": generate["batches_generated"],
        "rows_lost": len(expected - set(raw["prompt_index"])),
        "rows_duplicated": raw.height - raw["prompt_index"].n_unique(),
        "same_dataset_as_uninterrupted": raw.equals(reference),
        "uninterrupted_seconds": round(whole_seconds, 1),
        "resume_seconds": round(resume_seconds, 1),
        "resume_over_uninterrupted": round(resume_seconds / whole_seconds, 2),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
