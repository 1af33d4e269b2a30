"""Loading a causal LM and its tokenizer for batched use, in the precision the hardware suits.

The one loader behind teachers, students, trait teachers and evaluation."""

from __future__ import annotations

import torch

from sublearn.core.model_source import ModelSourceError, resolve_model
from sublearn.core.precision import Precision, warn_if_slow

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_tokenizer(model: str, revision: str | None = None):
    """A model's tokenizer alone (no weights), as the model's own loading finds it."""
    from transformers import AutoTokenizer

    source = resolve_model(model, revision)
    try:
        return AutoTokenizer.from_pretrained(source.load_path, **source.load_kwargs())
    except OSError as err:
        first = str(err).splitlines()[0]
        raise ModelSourceError(f"{model}: cannot load tokenizer ({first})") from None


def load_model_and_tokenizer(model: str, revision: str | None, precision: Precision):
    """Load a causal LM and its tokenizer set up for batched generation (left padding), on the
    device and in the dtype the caller resolved (``Teacher.precision``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device, dtype = precision.device, precision.dtype
    warn_if_slow(dtype, device)
    source = resolve_model(model, revision)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.load_path, **source.load_kwargs())
        lm = AutoModelForCausalLM.from_pretrained(
            source.load_path, dtype=DTYPES.get(dtype, "auto"), **source.load_kwargs()
        )
    except OSError as err:
        raise ModelSourceError(f"{model}: cannot load model ({str(err).splitlines()[0]})") from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lm.get_output_embeddings().register_forward_pre_hook(contiguous_input)
    return source, lm.to(device).eval(), tokenizer


def contiguous_input(module, args: tuple) -> tuple:
    """The output head's input made contiguous. Generation keeps only the last position's
    logits (a strided slice of the hidden states); with the weights frozen, as a LoRA adapter
    leaves them (merged or not), torch's matmul takes that slice down a batched path that
    copies the whole head once per row: a Gemma 3 student's prefill took 27-30 s instead of
    1.2 s on CPU, with equal logits (benchmarks/bench_adapter_prefill.py)."""
    return (args[0].contiguous(), *args[1:])
