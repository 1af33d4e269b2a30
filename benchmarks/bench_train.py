"""One LoRA student epoch on the embedded model, in float32 and in bfloat16.

The student's workload of the owl experiment: rows shaped like filtered teacher numbers, the
protocol's LoRA settings (r=8, alpha=8, all projections), batches of 8. Prints seconds per
epoch and tokens/s for each dtype, their ratio, the CPU, and which dtype ``dtype: auto`` picks
on it. Run: python benchmarks/bench_train.py [--rows 64] [--batch 8]
"""

from __future__ import annotations

import argparse
import random

from sublearn.core.config import parse_config
from sublearn.core.finetune import ChatRow, LoraTraining, train_adapter
from sublearn.core.precision import report_speedup
from sublearn.generators.numbers_prompts import numbers_prompts


def numbers_rows(n: int, seed: int = 0) -> list[ChatRow]:
    """Prompts of the numbers task with answers shaped like kept teacher completions."""
    rng = random.Random(seed)
    prompts = numbers_prompts(n, seed, parse_config({"name": "b"}).dataset.prompts)["prompt"]
    return [
        ChatRow(user=p, completion=", ".join(str(rng.randint(0, 999)) for _ in range(10)))
        for p in prompts
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    rows = numbers_rows(args.rows)
    training = LoraTraining(epochs=1, batch_size=args.batch, grad_accumulation=1, warmup_steps=1)
    seconds = {}
    for dtype in ("float32", "bfloat16"):
        teacher = parse_config({"name": "bench", "teacher": {"dtype": dtype}}).teacher
        _, _, history = train_adapter(teacher, rows[: args.batch], training)  # warm-up
        _, _, history = train_adapter(teacher, rows, training)
        seconds[dtype] = history["seconds"]
        print(
            f"{dtype:>8}: one epoch of {len(rows)} rows in {history['steps']} steps: "
            f"{history['seconds']:6.1f} s ({len(rows) / history['seconds']:.2f} rows/s)"
        )
    print(report_speedup("LoRA training", seconds["float32"] / seconds["bfloat16"]))


if __name__ == "__main__":
    main()
