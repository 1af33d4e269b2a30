"""The semantic filters on the embedded model, on CPU: rows/s, and what cheap filters first save.

Rows are real teacher completions (a raw.parquet; the owl code run's by default). The trait judge
is timed at several batch sizes; the leak filter at its default; then the whole code chain with
the judge last (it sees only what the format filters kept) against the judge on every row.
All in one run. Run: python benchmarks/bench_semantic.py --raw runs/owl-code-*/raw.parquet
"""

from __future__ import annotations

import argparse
import time

import polars as pl

from sublearn.core.config import JudgeFilter, LeakFilter
from sublearn.core.precision import cpu_description
from sublearn.core.words import word_forms
from sublearn.filters.chain import run_chain
from sublearn.filters.code import CodeFormat
from sublearn.filters.judge import TraitJudge
from sublearn.filters.leak import EmbeddingLeak, leak_scores
from sublearn.filters.trait_word import TraitWord


def timed(frame: pl.DataFrame, filters: list) -> tuple[float, dict]:
    started = time.perf_counter()
    result = run_chain(frame, filters)
    return time.perf_counter() - started, result.stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", required=True, help="a run's raw.parquet")
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--batches", type=int, nargs="+", default=[4, 16, 64])
    args = parser.parse_args()
    raw = pl.read_parquet(args.raw).select("completion")
    sample = raw.head(args.rows)
    print(f"CPU: {cpu_description()}; {sample.height} rows of {args.raw}")
    judge = TraitJudge(JudgeFilter(batch_size=args.batches[0]), ("owl",))
    run_chain(sample.head(2), [judge])  # load the judge once before timing
    print("| filter | batch | rows/s |")
    print("|---|---:|---:|")
    for batch in args.batches:
        seconds, _ = timed(sample, [TraitJudge(JudgeFilter(batch_size=batch), ("owl",))])
        print(f"| judge | {batch} | {sample.height / seconds:.1f} |")
    leak_scores("minilm", ["warm up"], ("owl",))
    seconds, _ = timed(sample, [EmbeddingLeak(LeakFilter(threshold=0.6), ("owl",), 0.6, {})])
    print(f"| leak (minilm) | 64 | {sample.height / seconds:.1f} |")
    words = TraitWord(tuple(word_forms("owl")))
    best = JudgeFilter(batch_size=args.batches[-1])
    alone, _ = timed(raw, [TraitJudge(best, ("owl",))])
    chained, stats = timed(raw, [CodeFormat(), words, TraitJudge(best, ("owl",))])
    judged = stats["filters"][-1]["total"]
    print(
        f"judge on all {raw.height} rows: {alone:.1f} s; code + trait_word first, judge on the "
        f"{judged} survivors: {chained:.1f} s ({alone / chained:.1f}x less time)"
    )


if __name__ == "__main__":
    main()
