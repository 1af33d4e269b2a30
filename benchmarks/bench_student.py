"""Student training throughput on the embedded model, against the CPU's own matmul peak.

Students are the science's bottleneck on CPU (issue 24): this measures what one optimiser step
of the quick start's students costs and where it goes. The workload is theirs: numbers prompts
with ten-number completions, top-20 targets per completion token, LoRA r=8 on every
projection, batches of 8, in the dtype ``auto`` picks here (or ``--dtype``).

Printed, all measured in this run on this CPU:
- the peak: GFLOP/s of a large matmul in the dtype (the most the CPU's matrix units give);
- the baseline step (logits over every position, as students trained before) and today's step
  (``completion_loss``: logits only from the first completion position), each as tokens/s,
  model GFLOP/s (4 x parameters per token: forward, and the backward pass to the activations
  that a frozen base needs; LoRA's own share is <1%) and that as a share of the peak;
- where positions go: the prompt's share and the padding's share of every batch position.
The last line reads ``speedup: N.NNx (today's step vs logits everywhere)``.
Run: python benchmarks/bench_student.py [--rows 64] [--batch 8] [--steps 6] [--dtype auto]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import replace

import torch
from bench_train import numbers_rows

from sublearn.core.config import parse_config
from sublearn.core.finetune import (
    ChatRow,
    Encoded,
    LoraTraining,
    add_lora,
    batch_tensors,
    completion_loss,
    encode_rows,
    weighted_nll,
)
from sublearn.core.models import load_model_and_tokenizer
from sublearn.core.precision import cpu_description, precision_for


def student_rows(tokenizer, n: int, k: int = 20, seed: int = 0) -> list[ChatRow]:
    """bench_train's numbers rows, each answer token with a top-k target."""
    rng = random.Random(seed)
    rows = []
    for row in numbers_rows(n, seed):
        ids = tokenizer(row.completion, add_special_tokens=False)["input_ids"]
        ids = (*ids, tokenizer.eos_token_id)
        topk = tuple((t, *rng.sample(range(100, 2000), k - 1)) for t in ids)
        logprobs = tuple(sorted((-rng.random() * 5 for _ in range(k)), reverse=True))
        rows.append(
            replace(row, completion_ids=ids, topk_ids=topk, topk_logprobs=(logprobs,) * len(ids))
        )
    return rows


def logits_everywhere(model, batch: list[Encoded], device) -> torch.Tensor:
    """The baseline: the loss as students computed it before, the output layer at every
    position of the batch (prompt and padding included)."""
    ids, mask, target_ids, target_w = batch_tensors(batch)
    out = model(input_ids=ids.to(device), attention_mask=mask.to(device))
    return weighted_nll(out.logits, target_ids.to(device), target_w.to(device))


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 8) -> float:
    """GFLOP/s of an n x n matmul in ``dtype``: the best of ``repeats``."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


def step_seconds(model, batches, loss_fn, steps: int) -> list[float]:
    """Seconds per optimiser step (forward, backward, AdamW), one warm-up step first."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    times = []
    for i in range(steps + 1):
        batch = batches[i % len(batches)]
        started = time.perf_counter()
        loss_fn(model, batch, "cpu").backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i:
            times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()
    teacher = parse_config({"name": "bench"}).teacher
    precision = precision_for(args.dtype, "cpu")
    dtype = precision.dtype
    _, model, tokenizer = load_model_and_tokenizer(teacher.model, None, precision)
    model, _ = add_lora(model, LoraTraining())
    model.train()
    encoded = encode_rows(tokenizer, student_rows(tokenizer, args.rows), 500)
    batches = [encoded[i : i + args.batch] for i in range(0, len(encoded), args.batch)]

    positions = sum(len(b) * max(len(e.ids) for e in b) for b in batches)
    real = sum(len(e.ids) for e in encoded)
    prompt = sum(e.start for e in encoded)
    head_positions = sum(
        len(b) * (max(len(e.ids) for e in b) - max(min(e.start for e in b) - 1, 0)) for b in batches
    )
    base = model.get_base_model()
    head = base.get_output_embeddings().weight.numel()
    body = sum(p.numel() for n, p in base.named_parameters() if "lora_" not in n) - head
    if not base.config.tie_word_embeddings:
        body -= base.get_input_embeddings().weight.numel()
    peak = matmul_peak(getattr(torch, dtype))
    print(f"CPU: {cpu_description()}; {torch.get_num_threads()} threads; dtype {dtype}")
    print(f"matmul peak ({dtype}, 2048^3): {peak:.0f} GFLOP/s")
    print(
        f"workload: {len(encoded)} rows, batches of {args.batch}; of {positions} batch positions "
        f"{prompt / positions:.0%} prompt, {(positions - real) / positions:.0%} padding, "
        f"{(real - prompt) / positions:.0%} completion"
    )
    per_batch = positions / len(batches)
    speeds = {}
    for name, fn, head_share in (
        ("logits everywhere", logits_everywhere, positions),
        ("today's step", completion_loss, head_positions),
    ):
        seconds = statistics.median(step_seconds(model, batches, fn, args.steps))
        flops = 4 * (body * per_batch + head * head_share / len(batches))
        speeds[name] = seconds
        print(
            f"{name:>17}: {seconds:5.2f} s/step, {per_batch / seconds:6.0f} positions/s, "
            f"{flops / seconds / 1e9:5.1f} model GFLOP/s = {flops / seconds / 1e9 / peak:.0%} "
            "of the matmul peak"
        )
    ratio = speeds["logits everywhere"] / speeds["today's step"]
    print(f"speedup: {ratio:.2f}x (today's step vs logits everywhere)")


if __name__ == "__main__":
    main()
