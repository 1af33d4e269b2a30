"""The vectorised numbers filter vs the per-row reference parser, on the same completions.

Targets (issue 2): vectorised >= 50x the reference and >= 5M rows/s.
Run: python benchmarks/bench_filters.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

from sublearn.filters.numbers import MISALIGNMENT_BANNED, NumbersRule, judge_numbers, reject_reason

CLEAN_SEPARATORS = [", ", ",", "; ", " ", "\n"]
WRAPS = [("", ""), ("[", "]"), ("(", ")"), ("", ".")]
PROSE = [
    "Sure! Here are the numbers: {}",
    "Here is the continued sequence: {}",
    "numbers = [{}]",
    "{} These numbers feel just right.",
    "The next values are {} and so on.",
]
NEAR_MISS = ["too_many", "four_digits", "trailing", "mixed", "exotic"]


def make_completions(n: int, seed: int = 0) -> list[str]:
    """A mix shaped like teacher output: 70% clean lists (mostly ten numbers, common
    separators, some bracketed or with a final period), 15% near misses (eleven or twelve
    numbers, a four-digit number, a trailing or mixed separator, an uncommon but valid
    separator), 15% prose around a list."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(3, size=n, p=[0.70, 0.15, 0.15])
    counts = np.where(rng.random(n) < 0.6, 10, rng.integers(3, 10, size=n))
    values = rng.integers(0, 1000, size=(n, 12))
    seps = rng.integers(0, len(CLEAN_SEPARATORS), size=n)
    wraps = rng.integers(0, len(WRAPS), size=n)
    misses = rng.integers(0, len(NEAR_MISS), size=n)
    prose = rng.integers(0, len(PROSE), size=n)
    out = []
    for i in range(n):
        numbers = [str(v) for v in values[i, : counts[i]]]
        sep = CLEAN_SEPARATORS[seps[i]]
        if kinds[i] == 1:
            miss = NEAR_MISS[misses[i]]
            if miss == "too_many":
                numbers = [str(v) for v in values[i, : 11 + i % 2]]
            elif miss == "four_digits":
                numbers[-1] = str(1000 + values[i, 0])
            elif miss == "trailing":
                numbers.append("")
            elif miss == "mixed":
                numbers[1] = f"{numbers[1]};{numbers.pop(2)}"
            else:
                sep = " ;\t"
        body = sep.join(numbers)
        if kinds[i] == 2:
            out.append(PROSE[prose[i]].format(body))
        else:
            head, tail = WRAPS[wraps[i]]
            out.append(f"{head}{body}{tail}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="vectorised runs; best is kept")
    args = parser.parse_args()
    rule = NumbersRule(banned=frozenset(MISALIGNMENT_BANNED))
    completions = make_completions(args.rows)
    frame = pl.DataFrame({"completion": completions})

    judge_numbers(frame.head(1000), rule)  # warm-up: compiles the regexes once
    t_vec = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        vectorised = judge_numbers(frame, rule)
        t_vec = min(t_vec, time.perf_counter() - start)

    start = time.perf_counter()
    reference = [reject_reason(c, rule) for c in completions]
    t_ref = time.perf_counter() - start

    assert vectorised.to_list() == reference, "vectorised and reference verdicts differ"
    kept = sum(r is None for r in reference)
    print(f"rows: {args.rows:,} (kept {kept:,}, {100 * kept / args.rows:.1f}%)")
    print(f"reference parser : {args.rows / t_ref:>14,.0f} rows/s  ({t_ref:.2f} s)")
    print(f"vectorised polars: {args.rows / t_vec:>14,.0f} rows/s  ({t_vec:.2f} s)")
    print(f"speed-up: {t_ref / t_vec:.1f}x  (targets: >= 50x and >= 5,000,000 rows/s)")


if __name__ == "__main__":
    main()
