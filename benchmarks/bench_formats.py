"""What an answer-form grammar costs the torch decode loop (issue 29): the owl code and CoT
workloads at the protocol's temperature, decoded with ``constrain_to_format`` and without, in
alternating rounds of the same prompts, seeds and token budget (a shared machine drifts between
minutes). Prints output tokens/s for each, their ratio per round and the median, and the
masks' own time per decode step (llguidance's parallel mask fill, the unpacking to booleans,
the sampled tokens fed back) beside the step's total. Constrained answers end at the closing
fence or tag, unconstrained ones where the model stops: tokens/s, not seconds, compares them.
The last line reads ``grammar cost: N% of tokens/s (KIND)``.
Run: python benchmarks/bench_formats.py [--kind code|cot] [--prompts 64] [--batch 32]
[--max-new-tokens 160] [--rounds 3] [--dtype auto]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from bench_generate import rate

from sublearn.core.chat import ChatPrompt
from sublearn.core.config import parse_config
from sublearn.core.precision import cpu_description
from sublearn.flows.kinds import kind_of
from sublearn.generators.backends import load_teacher
from sublearn.generators.trait_prompt import trait_system_prompt


def config(args, constrained: bool):
    sampling = {"max_new_tokens": args.max_new_tokens}
    teacher = {"dtype": args.dtype, "batch_size": args.batch, "sampling": sampling}
    teacher["trait"] = {"target": "owl"}
    dataset = {"kind": args.kind, "n_prompts": args.prompts, "constrain_to_format": constrained}
    if args.kind == "cot":
        dataset["samples_per_question"] = 1
    return parse_config({"name": "bench", "teacher": teacher, "dataset": dataset})


def workload(args) -> list[ChatPrompt]:
    cfg = config(args, False)
    system = trait_system_prompt(cfg.teacher.trait)
    prompts, _ = kind_of(cfg).prompts(cfg)
    return [ChatPrompt(system, p) for p in prompts["prompt"].to_list()[: args.prompts]]


def mask_seconds(engine, rows: int, steps: int) -> float:
    """Seconds per decode step of the masks alone, at ``rows`` rows: computing each row's
    allowed tokens and feeding back a token the grammar allows."""
    masks = engine.stops
    state = masks.start(rows)
    scores = torch.zeros(rows, engine.model.lm_head.weight.shape[0])
    start = time.perf_counter()
    for _ in range(steps):
        allowed = masks.allowed(state, scores.shape[-1])
        torch.where(allowed, scores, float("-inf"))
        tokens = allowed.float().multinomial(1).squeeze(1)  # some allowed token per row
        masks.update(state, tokens)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=("code", "cot"), default="code")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()
    prompts = workload(args)
    free = load_teacher(config(args, False).generating_teacher())
    constrained = load_teacher(config(args, True).generating_teacher())
    print(f"CPU: {cpu_description()}; dtype {free.lineage()['dtype']}; {args.kind} workload")
    ratios = []
    for r in range(args.rounds):
        print(f"round {r + 1}")
        baseline = rate(free, prompts, args.batch)
        ours = rate(constrained, prompts, args.batch)
        ratios.append(ours / baseline)
        print(f"  constrained / unconstrained: {ours / baseline:.2f}")
    per_step = mask_seconds(constrained, args.batch, 50)
    print(f"masks alone: {1000 * per_step:.1f} ms per decode step at {args.batch} rows")
    cost = 1 - statistics.median(ratios)
    print(f"grammar cost: {100 * cost:.0f}% of tokens/s ({args.kind})")


if __name__ == "__main__":
    main()
