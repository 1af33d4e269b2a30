"""Generation's prefill with a LoRA adapter on the model, with and without
``sublearn.core.models.contiguous_input`` on the output head, in the same run.

Generation asks for the last position's logits only (``logits_to_keep=1``); with the weights
frozen (as a peft adapter leaves them, merged or not), torch's matmul took that strided slice
down a batched path that copies the whole output head once per row. The hook makes the slice
contiguous; the logits are equal. The last
line reads ``speedup: N.Nx (hook vs none)``.
Run: python benchmarks/bench_adapter_prefill.py [--model embedded-gemma3] [--rows 8]
"""

from __future__ import annotations

import argparse
import time

import torch
from peft import LoraConfig, get_peft_model

from sublearn.core.finetune import PROJECTIONS
from sublearn.core.models import load_model_and_tokenizer
from sublearn.core.precision import cpu_description, precision_for


def seconds(model, ids: torch.Tensor, repeats: int = 3) -> tuple[float, torch.Tensor]:
    with torch.inference_mode():
        logits = model(input_ids=ids, logits_to_keep=1).logits
        start = time.perf_counter()
        for _ in range(repeats):
            model(input_ids=ids, logits_to_keep=1)
    return (time.perf_counter() - start) / repeats, logits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="embedded-gemma3")
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=50)
    args = parser.parse_args()
    precision = precision_for("auto", "cpu")
    _, model, _ = load_model_and_tokenizer(args.model, None, precision)
    lora = LoraConfig(r=8, lora_alpha=8, target_modules=list(PROJECTIONS), task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    ids = torch.randint(1000, 5000, (args.rows, args.tokens), generator=torch.Generator())
    with_hook, logits = seconds(model, ids)
    head = model.get_output_embeddings()
    hooks = dict(head._forward_pre_hooks)
    head._forward_pre_hooks.clear()
    without, plain = seconds(model, ids)
    head._forward_pre_hooks.update(hooks)
    print(f"{cpu_description()}; {args.model} in {precision.dtype}, LoRA r=8 on every projection")
    print(f"prefill of {args.rows} x {args.tokens} tokens, last logits only:")
    print(f"  head input as sliced: {without:.2f} s")
    print(f"  made contiguous:      {with_hook:.2f} s (logits equal: {torch.equal(logits, plain)})")
    print(f"speedup: {without / with_hook:.1f}x (hook vs none)")


if __name__ == "__main__":
    main()
