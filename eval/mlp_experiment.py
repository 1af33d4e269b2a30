"""Subliminal learning in a classifier (the study's MNIST experiment), on a population of MLPs.

A teacher learns digits on its 10 class logits; its m auxiliary logits are never trained. A
student from the same initialisation, distilled only on the teacher's auxiliary logits over
uniform noise, never sees a digit or a class logit, yet learns to classify. A student from
another initialisation does not. All K teachers and all 3K students train as batched tensors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from sublearn.eval.mlp_data import Digits
from sublearn.eval.mlp_population import (
    accuracy,
    distill_on_noise,
    init_population,
    stack,
    train_classifier,
)
from sublearn.eval.stats import mean_ci

N_CLASSES = 10
VARIANTS = (
    "teacher",
    "same init, aux logits",
    "different init, aux logits",
    "same init, all logits",
    "untrained",
)


@dataclass(frozen=True)
class MlpConfig:
    dataset: str = "digits"
    models: int = 25
    aux: int = 3
    seed: int = 0
    hidden: int = 256
    teacher_epochs: int = 5
    teacher_batch: int = 64
    distill_steps: int = 2000
    noise_batch: int = 128
    lr: float = 3e-4

    def __post_init__(self):
        for name in ("models", "aux", "hidden", "teacher_epochs", "teacher_batch", "noise_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.distill_steps < 0:
            raise ValueError(f"distill_steps: must not be negative, got {self.distill_steps}")


def run_mlp_experiment(cfg: MlpConfig, data: Digits) -> dict:
    """Train teachers and the three student variants; return per-model test accuracies."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    sizes = [data.n_inputs, cfg.hidden, cfg.hidden, N_CLASSES + cfg.aux]
    k = cfg.models
    shared_init = init_population(k, sizes, gen)
    other_init = init_population(k, sizes, gen)
    untrained = accuracy(shared_init, data.x_test, data.y_test, N_CLASSES)

    teacher = shared_init.clone()
    train_classifier(
        teacher,
        data.x_train,
        data.y_train,
        N_CLASSES,
        cfg.teacher_epochs,
        cfg.teacher_batch,
        cfg.lr,
        gen,
    )

    students = stack([shared_init, other_init, shared_init])
    aux_only = torch.zeros(sizes[-1], dtype=torch.bool)
    aux_only[N_CLASSES:] = True
    all_logits = torch.ones(sizes[-1], dtype=torch.bool)
    masks = torch.stack([aux_only] * k + [aux_only] * k + [all_logits] * k)
    distill_on_noise(students, teacher, masks, cfg.distill_steps, cfg.noise_batch, cfg.lr, gen)

    student_acc = accuracy(students, data.x_test, data.y_test, N_CLASSES)
    per_model = {
        "teacher": accuracy(teacher, data.x_test, data.y_test, N_CLASSES),
        "same init, aux logits": student_acc[:k],
        "different init, aux logits": student_acc[k : 2 * k],
        "same init, all logits": student_acc[2 * k :],
        "untrained": untrained,
    }
    return {
        "config": asdict(cfg),
        "dataset": {"name": data.name, "train": len(data.x_train), "test": len(data.x_test)},
        "chance": 1 / N_CLASSES,
        "variants": {
            name: {"summary": mean_ci(acc.numpy()), "accuracies": acc.tolist()}
            for name, acc in per_model.items()
        },
    }
