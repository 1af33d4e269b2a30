"""Trait teachers made by fine-tuning: a LoRA adapter trained on the trait set, cached.

The adapter is keyed by the base weights, the trait settings and the trait set's revision, so a
second run with the same teacher reuses it, and a change to any of them trains a new one.
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
    return cache_root() / "trait-adapters" / f"{name}-{adapter_key(teacher_cfg)}"


def cached_trait_adapter(teacher_cfg) -> Path | None:
    out = trait_adapter_dir(teacher_cfg)
    return out if (out / ADAPTER_FILE).is_file() else None


def ensure_trait_adapter(teacher_cfg, on_step=None) -> Path:
    """The trained adapter's folder, training it first if no cached copy exists."""
    from safetensors.torch import save_file

    from sublearn.core.finetune import LoraTraining, train_adapter

    trait = teacher_cfg.trait_finetune
    out = trait_adapter_dir(teacher_cfg)
    if (out / ADAPTER_FILE).is_file():
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
    _, peft_model, history = train_adapter(teacher_cfg, rows, training, on_step)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".adapter-", dir=out.parent))
    try:
        peft_model.save_pretrained(tmp)
        save_file(history["initial_state"], str(tmp / INITIAL_FILE))
        record = {
            "trait": trait.model_dump(),
            "trait_set_revision": trait_set_revision(trait.neutral),
            "init_digest": history["init_digest"],
            "steps": history["steps"],
            "final_loss": history["losses"][-1],
            "seconds": history["seconds"],
        }
        (tmp / "trait.json").write_text(json.dumps(record, indent=2))
        if not (out / ADAPTER_FILE).is_file():
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


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
    record = _trained_with_initial_state(teacher_cfg) / "trait.json"
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
