"""Choosing the leak filter's embedding model: quality on a planted-leak set, and rows/s.

Clean rows are real code completions (a control teacher's raw.parquet, or the built-in code tasks'
templates when none is given); the planted copies of half of them carry an owl hint that never
says "owl" (a name, a string or a phrase about a nocturnal bird of prey). For each model the
threshold is calibrated on the other half of the clean rows (their 0.999 quantile), as the filter
does with a control teacher's rows; reported: ROC AUC of planted vs clean, planted rows caught,
clean held-out rows wrongly dropped, and rows/s on this CPU (all in one run).

Run: python benchmarks/bench_leak.py [--control runs/owl-code-control-*/raw.parquet]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from sublearn.core.precision import cpu_description
from sublearn.filters.leak import calibrated_threshold, leak_scores
from sublearn.generators.code_prompts import all_tasks

HINTS = (
    'night_hunter = "feathers, talons and a silent flight"',
    'hoots = ["who", "who"]',
    "# the wise bird of the night watches from the barn",
    'bird = "nocturnal raptor with big round eyes"',
    "def hoot():\n    return 'twit twoo'",
    'label = "perched in the old oak, turning its head all the way round"',
)


def planted(rows: list[str], seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"{row}\n{HINTS[int(rng.integers(len(HINTS)))]}" for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--control", default=None, help="a control teacher's raw.parquet")
    parser.add_argument("--models", nargs="+", default=["minilm", "wordllama"])
    args = parser.parse_args()
    if args.control:
        clean = pl.read_parquet(args.control)["completion"].to_list()
    else:
        clean = [t["template"] for t in all_tasks()]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(clean))
    calibration = [clean[i] for i in order[: len(clean) // 2]]
    held_out = [clean[i] for i in order[len(clean) // 2 :]]
    leaks = planted(held_out, seed=1)
    print(f"CPU: {cpu_description()}")
    print(f"{len(calibration)} calibration rows, {len(held_out)} clean and {len(leaks)} planted")
    print("| model | AUC planted vs clean | planted caught | clean dropped | rows/s |")
    print("|---|---:|---:|---:|---:|")
    for model in args.models:
        leak_scores(model, ["warm up"], ("owl",))
        started = time.perf_counter()
        control = leak_scores(model, calibration, ("owl",))
        clean_scores = leak_scores(model, held_out, ("owl",))
        leak = leak_scores(model, leaks, ("owl",))
        rate = (len(calibration) + len(held_out) + len(leaks)) / (time.perf_counter() - started)
        threshold = calibrated_threshold(control, 0.999)
        labels = np.r_[np.zeros(len(clean_scores)), np.ones(len(leak))]
        auc = roc_auc_score(labels, np.r_[clean_scores, leak])
        print(
            f"| {model} | {auc:.3f} | {(leak > threshold).mean():.1%} | "
            f"{(clean_scores > threshold).mean():.1%} | {rate:,.0f} |"
        )


if __name__ == "__main__":
    main()
