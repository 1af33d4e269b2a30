"""The transformers teacher on the embedded model: batched vs one prompt at a time.

Prints output tokens/s for each mode in float32 and bfloat16, the batched/sequential ratio
(target >= 8x), the share of the teacher's completions that pass the numbers filter, the CPU,
and which dtype ``dtype: auto`` picks on it.
Run: python benchmarks/bench_generate.py [--prompts 64] [--sequential 8] [--batch 64]
"""

from __future__ import annotations

import argparse
import time

import polars as pl

from filters.numbers import NumbersRule, filter_numbers
from generators.backends import load_teacher
from generators.numbers_prompts import numbers_prompts
from generators.trait_prompt import trait_system_prompt
from sublearn.chat import ChatPrompt
from sublearn.config import parse_config
from sublearn.precision import report_speedup


def output_tokens(teacher, completions: list[str]) -> int:
    # +1 for the end-of-turn token that closes each finished completion
    return sum(len(teacher.tokenizer(c)["input_ids"]) + 1 for c in completions)


def timed(teacher, prompts: list[ChatPrompt], batch: int) -> tuple[float, list[str]]:
    start = time.perf_counter()
    out: list[str] = []
    for i in range(0, len(prompts), batch):
        out += teacher.generate(prompts[i : i + batch], seed=i)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=64, help="prompts for the batched run")
    parser.add_argument("--sequential", type=int, default=8, help="prompts for the 1-by-1 run")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    rule = NumbersRule()
    results = {}
    for dtype in ("float32", "bfloat16"):
        config = parse_config(
            {
                "name": "bench",
                "teacher": {
                    "dtype": dtype,
                    "trait": {"target": "owl"},
                    "sampling": {"max_new_tokens": args.max_new_tokens},
                },
            }
        )
        teacher = load_teacher(config.teacher)
        system = trait_system_prompt(config.teacher.trait)
        frame = numbers_prompts(args.prompts, 0, config.dataset.prompts)
        prompts = [ChatPrompt(system, p) for p in frame["prompt"]]
        teacher.generate(prompts[:2], seed=0)  # warm-up
        t_batch, batched = timed(teacher, prompts, args.batch)
        t_seq, sequential = timed(teacher, prompts[: args.sequential], 1)
        tps_batch = output_tokens(teacher, batched) / t_batch
        tps_seq = output_tokens(teacher, sequential) / t_seq
        stats = filter_numbers(pl.DataFrame({"completion": batched}), rule).stats
        results[dtype] = tps_batch
        print(
            f"{dtype:>8}: batched {tps_batch:7.1f} tok/s | one at a time {tps_seq:6.1f} tok/s"
            f" | ratio {tps_batch / tps_seq:5.1f}x (target >= 8x)"
            f" | filter pass {stats['kept']}/{stats['total']} ({100 * stats['kept_rate']:.1f}%)"
        )
    print(report_speedup("batched generation", results["bfloat16"] / results["float32"]))


if __name__ == "__main__":
    main()
