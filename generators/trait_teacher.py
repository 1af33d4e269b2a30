"""Trait teachers made by fine-tuning on the trait set, cached: a LoRA adapter, or (``method:
full``) a whole model folder, which a teacher then loads as its ``model``.

The weights are keyed by the base weights, the trait settings and the trait set's revision, so a
second run with the same teacher reuses them, and a change to any of them trains anew.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from sublearn.core.model_source import cache_root, resolve_model
from sublearn.generators.trait_set import trait_rows, trait_set_revision

ADAPTER_FILE = "adapter_model.safetensors"
INITIAL_FILE = "initial_adapter.safetensors"  # where training started: students may start there
RECORD_FILE = "trait.json"  # written last into the folder, which then moves in whole


def adapter_key(teacher_cfg) -> str:
    source = resolve_model(teacher_cfg.model, teacher_cfg.revision)
    blob = json.dumps(
        [
            source.lineage(),
            teacher_cfg.trait_finetune.key_dict(),
            trait_set_revision(teacher_cfg.trait_finetune.neutral),
            teacher_cfg.precision().dtype,
        ],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def trait_adapter_dir(teacher_cfg) -> Path:
    trait = teacher_cfg.trait_finetune
    name = f"neutral-{trait.category}" if trait.neutral else trait.target
    name += "-full" if trait.full else ""
    return cache_root() / "trait-adapters" / f"{name}-{adapter_key(teacher_cfg)}"


def _trained(folder: Path, trait) -> bool:
    return (folder / ("config.json" if trait.full else ADAPTER_FILE)).is_file()


def cached_trait_adapter(teacher_cfg) -> Path | None:
    """The trained adapter's (or fully fine-tuned model's) folder, if the cache holds it."""
    out = trait_adapter_dir(teacher_cfg)
    return out if _trained(out, teacher_cfg.trait_finetune) else None


def ensure_trait_adapter(teacher_cfg, on_step=None) -> Path:
    """The trained adapter's (or model's) folder, training it first if no cached copy exists."""
    from sublearn.core.finetune import LoraTraining

    trait = teacher_cfg.trait_finetune
    out = trait_adapter_dir(teacher_cfg)
    if _trained(out, trait):
        return out
    training = LoraTraining(
        rank=trait.rank,
        alpha=trait.alpha,
        epochs=trait.epochs,
        lr=trait.lr,
        batch_size=trait.batch_size,
        grad_accumulation=1,
        warmup_steps=5,
        seed=trait.seed,
        init_seed=trait.init_seed,
    )
    rows = trait_rows(trait.target, trait.category, trait.plural, trait.neutral)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".adapter-", dir=out.parent))
    try:
        train = _train_full if trait.full else _train_lora
        history = train(teacher_cfg, rows, training, on_step, tmp)
        record = {
            "trait": trait.model_dump(),
            "trait_set_revision": trait_set_revision(trait.neutral),
            **history,
        }
        (tmp / RECORD_FILE).write_text(json.dumps(record, indent=2))
        if not _trained(out, trait):
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _train_lora(teacher_cfg, rows, training, on_step, folder: Path) -> dict:
    from safetensors.torch import save_file

    from sublearn.core.finetune import train_adapter

    _, peft_model, history = train_adapter(teacher_cfg, rows, training, on_step)
    peft_model.save_pretrained(folder)
    save_file(history["initial_state"], str(folder / INITIAL_FILE))
    return {"init_digest": history["init_digest"], **_summary(history)}


def _train_full(teacher_cfg, rows, training, on_step, folder: Path) -> dict:
    """Every weight trained, saved with the tokenizer as a model folder any backend loads."""
    from sublearn.core.finetune import train_full

    _, model, tokenizer, history = train_full(teacher_cfg, rows, training, on_step)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return {"dtype": "float32", **_summary(history)}


def _summary(history: dict) -> dict:
    return {
        "steps": history["steps"],
        "final_loss": history["losses"][-1],
        "seconds": history["seconds"],
    }


def _trained_with_initial_state(teacher_cfg) -> Path:
    from sublearn.core.steps import StepError

    folder = cached_trait_adapter(teacher_cfg)
    if folder is None or not (folder / INITIAL_FILE).is_file():
        raise StepError(
            f"{trait_adapter_dir(teacher_cfg)}: no trained trait adapter with its initial "
            "state; run the teacher step first"
        )
    return folder


def initial_adapter_state(teacher_cfg) -> dict:
    """The trait adapter's initial state (students with ``init: teacher`` start there), read
    from the trained adapter's folder; a clear error when the teacher has not been trained."""
    from safetensors.torch import load_file

    return load_file(str(_trained_with_initial_state(teacher_cfg) / INITIAL_FILE))


def initial_adapter_digest(teacher_cfg) -> str:
    """The digest of that state as recorded when the adapter was trained: what a student's
    key holds of its start, known without reading and hashing the state again."""
    record = _trained_with_initial_state(teacher_cfg) / RECORD_FILE
    return json.loads(record.read_text())["init_digest"]


def trait_record(teacher) -> dict | None:
    """The trait and how the teacher got it: by system prompt, by fine-tuning, or both."""
    if teacher.trait_finetune is not None:
        tuned = teacher.trait_finetune
        return {
            "target": None if tuned.neutral else tuned.target,
            "category": tuned.category,
            "plural": None if tuned.neutral else tuned.plural,
            "by": (
                "neutral fine-tuning (the trait set with the trait taken out)"
                if tuned.neutral
                else "fine-tuning"
            )
            + (" and system prompt" if teacher.trait else ""),
            "trait_set_revision": trait_set_revision(tuned.neutral),
            "training": {
                k: v
                for k, v in tuned.key_dict().items()
                if k not in ("target", "category", "plural")
            },
        }
    if teacher.trait is not None:
        return {**teacher.trait.model_dump(exclude={"system_prompt"}), "by": "system prompt"}
    return None
