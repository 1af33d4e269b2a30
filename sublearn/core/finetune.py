"""Fine-tuning on chat rows with the loss on the completion only, as a plain loop: LoRA, or
every weight.

Used for students (LoRA, trained on a teacher's filtered completions) and for trait teachers
(trained on a templated trait set: LoRA, or in full as the 160M replication's teacher). The
protocol's defaults: LoRA r=8, alpha=8 on the attention and MLP projections, 3 epochs, lr 2e-4
with a linear schedule and 5 warm-up steps, effective batch 66 (22 x 3 accumulation), max
length 500, gradient clipping at 1.0.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraTraining:
    rank: int = 8
    alpha: int = 8
    targets: tuple[str, ...] = PROJECTIONS
    epochs: int = 3
    lr: float = 2e-4
    warmup_steps: int = 5
    batch_size: int = 22
    grad_accumulation: int = 3
    max_length: int = 500
    clip: float = 1.0
    seed: int = 0
    init_seed: int = 0


@dataclass(frozen=True)
class ChatRow:
    """One training row. With ``completion_ids`` the student trains on the teacher's exact
    tokens; with ``topk_ids``/``topk_logprobs`` (one list per token) it matches the teacher's
    distribution over its top-k tokens instead of the single sampled token. ``loss_mask`` (one
    flag per completion token) puts the loss on the flagged tokens only."""

    user: str
    completion: str
    system: str | None = None
    completion_ids: tuple[int, ...] | None = None
    topk_ids: tuple[tuple[int, ...], ...] | None = None
    topk_logprobs: tuple[tuple[float, ...], ...] | None = None
    loss_mask: tuple[bool, ...] | None = None


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    start: int  # where the completion begins
    targets: list[list[int]]  # per completion token: candidate next tokens
    weights: list[list[float]]  # and their probabilities (one-hot for sampled-token training)


def encode_rows(tokenizer, rows: Sequence[ChatRow], max_length: int) -> list[Encoded]:
    """Token ids with the chat template applied, and per completion token the distribution to
    learn. Text completions end with the end-of-turn token, so the student learns to stop."""
    from sublearn.core.chat import prompt_ids

    out = []
    for row in rows:
        head = [{"role": "system", "content": row.system}] if row.system else []
        prompt = prompt_ids(tokenizer, [*head, {"role": "user", "content": row.user}])
        if row.completion_ids is not None:
            answer = list(row.completion_ids)
        else:
            answer = tokenizer(row.completion, add_special_tokens=False)["input_ids"]
            answer.append(tokenizer.eos_token_id)
        if row.topk_ids is not None:
            targets = [list(t) for t in row.topk_ids]
            weights = [_normalised(lp) for lp in row.topk_logprobs]
        else:
            targets, weights = [[t] for t in answer], [[1.0] for _ in answer]
        if row.loss_mask is not None:
            flags = zip(weights, row.loss_mask, strict=True)
            weights = [w if on else [0.0] * len(w) for w, on in flags]
        ids = (prompt + answer)[:max_length]
        start = min(len(prompt), len(ids))
        keep = len(ids) - start
        out.append(Encoded(ids, start, targets[:keep], weights[:keep]))
    return out


def _normalised(logprobs: Sequence[float]) -> list[float]:
    p = torch.tensor(logprobs, dtype=torch.float64).exp()
    return (p / p.sum()).tolist()


def batch_tensors(batch: list[Encoded]) -> tuple[torch.Tensor, ...]:
    """A batch right-padded: input ids, attention mask, and per position the target tokens
    and their weights (zero where nothing is learned: prompt, padding, masked tokens)."""
    width = max(len(e.ids) for e in batch)
    k = max((len(t) for e in batch for t in e.targets), default=1)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    target_ids = torch.zeros((len(batch), width, k), dtype=torch.long)
    target_w = torch.zeros((len(batch), width, k))
    for row, e in enumerate(batch):
        ids[row, : len(e.ids)] = torch.tensor(e.ids)
        mask[row, : len(e.ids)] = 1
        for j, (t, w) in enumerate(zip(e.targets, e.weights, strict=True)):
            target_ids[row, e.start + j - 1, : len(t)] = torch.tensor(t)
            target_w[row, e.start + j - 1, : len(w)] = torch.tensor(w)
    return ids, mask, target_ids, target_w


def weighted_nll(logits: torch.Tensor, target_ids: torch.Tensor, target_w: torch.Tensor):
    """Mean over the positions that learn something of the cross-entropy against the target
    distribution; zero (with a gradient) when no position does, never NaN."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    per_position = -(logp.gather(-1, target_ids) * target_w).sum(-1)
    counted = target_w.sum(-1) > 0
    if not counted.any():
        return per_position.sum() * 0.0
    return per_position[counted].mean()


def completion_loss(model, batch: list[Encoded], device) -> torch.Tensor:
    """Cross-entropy on completion tokens only (prompt tokens are masked), against one-hot
    targets (sampled tokens) or the teacher's renormalised top-k distribution. The output
    layer runs only from the batch's first completion position on (``logits_to_keep``): the
    prompt's positions need no logits (1.05x per student step on the embedded model, AMD EPYC
    bf16, benchmarks/bench_student.py)."""
    ids, mask, target_ids, target_w = batch_tensors(batch)
    first = max(min(e.start for e in batch) - 1, 0)
    keep = torch.arange(first, ids.shape[1], device=device)
    out = model(input_ids=ids.to(device), attention_mask=mask.to(device), logits_to_keep=keep)
    return weighted_nll(
        out.logits, target_ids[:, first:].to(device), target_w[:, first:].to(device)
    )


def linear_with_warmup(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor: linear rise over ``warmup`` steps, then linear decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(total - warmup, 1))


class AdapterInitError(ValueError):
    """An initial adapter state that does not fit the adapter it should start."""


def lora_modules(model) -> dict[str, torch.nn.Module]:
    """The LoRA layers of a peft model by name, in a fixed order."""
    return dict(sorted((n, m) for n, m in model.named_modules() if hasattr(m, "lora_A")))


def lora_parameters(model) -> dict[str, torch.nn.Parameter]:
    """Each LoRA layer's A and B weights under the names an initial state uses, layers in a
    fixed order (A before B), so a draw over them is the same sequence every time."""
    params = {}
    for name, module in lora_modules(model).items():
        params[f"{name}.lora_A.weight"] = module.lora_A["default"].weight
        params[f"{name}.lora_B.weight"] = module.lora_B["default"].weight
    return params


def draw_initial_state(model, init_seed: int) -> dict[str, torch.Tensor]:
    """peft's default initialisation (A: kaiming-uniform, a=sqrt(5); B: zero), drawn in float32
    from a generator of its own: the global RNG depends on what ran before in the process and in
    which thread, so peft's own draw makes adapters irreproducible and gives every student its
    own random subspace."""
    gen = torch.Generator().manual_seed(init_seed)
    state = {}
    for key, param in lora_parameters(model).items():
        state[key] = torch.zeros(param.shape)
        if key.endswith("lora_A.weight"):
            torch.nn.init.kaiming_uniform_(state[key], a=math.sqrt(5), generator=gen)
    return state


def load_initial_state(model, state: dict[str, torch.Tensor]) -> None:
    """Start the adapter from ``state``: the same layers and shapes, or one line saying which
    differ (another rank, other target modules or another base)."""
    params = lora_parameters(model)
    if params.keys() != state.keys():
        missing = sorted(params.keys() - state.keys()) or sorted(state.keys() - params.keys())
        raise AdapterInitError(
            f"the initial adapter state has other layers than this adapter (e.g. {missing[0]}): "
            "rank, alpha and target modules must match the teacher's"
        )
    for key, param in params.items():
        if tuple(param.shape) != tuple(state[key].shape):
            raise AdapterInitError(
                f"the initial adapter state's {key} is {tuple(state[key].shape)}, this adapter's "
                f"{tuple(param.shape)}: rank and target modules must match the teacher's"
            )
    with torch.no_grad():
        for key, param in params.items():
            param.copy_(state[key].to(param.dtype))


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 of an adapter state (names, shapes and float32 values), for the lineage."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().to("cpu", torch.float32).contiguous()
        digest.update(f"{key}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def add_lora(model, cfg: LoraTraining, initial: dict[str, torch.Tensor] | None = None):
    """``model`` with LoRA on ``cfg.targets``, starting from ``initial`` when given (a
    teacher's initial state), else from a state drawn from ``cfg.init_seed``. The start is
    returned too: it goes with the adapter and its digest into the lineage."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        target_modules=list(cfg.targets),
        lora_dropout=0.0,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    start = initial if initial is not None else draw_initial_state(peft_model, cfg.init_seed)
    load_initial_state(peft_model, start)
    return peft_model, start


def train_weights(
    model,
    tokenizer,
    rows: Sequence[ChatRow],
    cfg: LoraTraining,
    on_step: Callable[[int, int, float], None] | None = None,
    on_checkpoint: Callable[[int, object], None] | None = None,
    checkpoint_every: int | None = None,
) -> dict:
    """Train ``model``'s trainable weights in place (a peft model's adapters, or every weight of
    a plain one); returns the loss history.
    Every ``checkpoint_every`` optimiser steps before the last, ``on_checkpoint(step)`` sees
    the model as it stands (for evaluating students along their training)."""
    device = next(model.parameters()).device
    encoded = encode_rows(tokenizer, rows, cfg.max_length)
    gen = torch.Generator().manual_seed(cfg.seed)
    steps_per_epoch = math.ceil(len(encoded) / (cfg.batch_size * cfg.grad_accumulation))
    total = max(steps_per_epoch * cfg.epochs, 1)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: linear_with_warmup(s, cfg.warmup_steps, total)
    )
    model.train()
    losses, step, started = [], 0, time.perf_counter()
    for _ in range(cfg.epochs):
        order = torch.randperm(len(encoded), generator=gen).tolist()
        chunk = cfg.batch_size * cfg.grad_accumulation
        for start in range(0, len(order), chunk):
            group = [encoded[i] for i in order[start : start + chunk]]
            micro = [group[i : i + cfg.batch_size] for i in range(0, len(group), cfg.batch_size)]
            step_loss = 0.0
            for batch in micro:
                loss = completion_loss(model, batch, device) * len(batch) / len(group)
                loss.backward()
                step_loss += loss.item()
            torch.nn.utils.clip_grad_norm_(params, cfg.clip)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(step_loss)
            step += 1
            if on_step:
                on_step(step, total, step_loss)
            if on_checkpoint and checkpoint_every and step % checkpoint_every == 0 and step < total:
                on_checkpoint(step, model)
    model.eval()
    return {"steps": step, "losses": losses, "seconds": time.perf_counter() - started}


def train_adapter(
    teacher_cfg,
    rows: Sequence[ChatRow],
    cfg: LoraTraining,
    on_step=None,
    initial: dict[str, torch.Tensor] | None = None,
    on_checkpoint: Callable[[int, object], None] | None = None,
    checkpoint_every: int | None = None,
):
    """Load the base model a ``Teacher`` config names, add LoRA (from ``initial`` or from
    ``cfg.init_seed``) and train it on ``rows``. Returns the base model's source (for the
    lineage), the trained peft model and the history, which holds the initial state and its
    digest."""
    from sublearn.core.models import load_model_and_tokenizer

    source, model, tokenizer = load_model_and_tokenizer(
        teacher_cfg.model, teacher_cfg.revision, teacher_cfg.precision()
    )
    peft_model, start = add_lora(model, cfg, initial)
    history = train_weights(
        peft_model, tokenizer, rows, cfg, on_step, on_checkpoint, checkpoint_every
    )
    return (
        source,
        peft_model,
        {**history, "initial_state": start, "init_digest": state_digest(start)},
    )


def train_full(teacher_cfg, rows: Sequence[ChatRow], cfg: LoraTraining, on_step=None):
    """Load the base model a ``Teacher`` config names in float32 and train every weight on
    ``rows`` (``cfg``'s rank, alpha and init_seed unused): in bfloat16, AdamW's small updates
    would round away. Returns the base's source, the trained model, its tokenizer and the
    history."""
    from sublearn.core.models import load_model_and_tokenizer
    from sublearn.core.precision import precision_for

    precision = precision_for("float32", teacher_cfg.precision().device)
    source, model, tokenizer = load_model_and_tokenizer(
        teacher_cfg.model, teacher_cfg.revision, precision
    )
    model.requires_grad_(True)
    history = train_weights(model, tokenizer, rows, cfg, on_step)
    return source, model, tokenizer, history
