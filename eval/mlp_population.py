"""A population of K small MLPs trained at once, as batched tensors.

Every weight has a leading model axis, so one ``baddbmm`` per layer runs all K models: no Python
loop over models. Models stay independent: the loss is a sum of per-model losses, so each
model's gradient depends only on its own parameters, and Adam updates element by element.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Population:
    """Per layer: weights (K, fan_in, fan_out) and biases (K, 1, fan_out)."""

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]

    @property
    def size(self) -> int:
        return self.weights[0].shape[0]

    def parameters(self) -> list[torch.Tensor]:
        return [*self.weights, *self.biases]

    def clone(self) -> Population:
        """An independent copy with the same values (a student sharing the teacher's init)."""
        return Population(
            [w.detach().clone().requires_grad_() for w in self.weights],
            [b.detach().clone().requires_grad_() for b in self.biases],
        )

    def frozen(self) -> Population:
        return Population([w.detach() for w in self.weights], [b.detach() for b in self.biases])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (K, B, out) for inputs shared by all models (B, in) or per model (K, B, in)."""
        h = x.expand(self.size, *x.shape) if x.dim() == 2 else x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = F.relu(h)
        return h


def init_population(k: int, sizes: list[int], generator: torch.Generator) -> Population:
    """K models initialised like ``nn.Linear`` (uniform in +-1/sqrt(fan_in)), from a seed."""
    weights, biases = [], []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1 / math.sqrt(fan_in)
        w = (torch.rand(k, fan_in, fan_out, generator=generator) * 2 - 1) * bound
        b = (torch.rand(k, 1, fan_out, generator=generator) * 2 - 1) * bound
        weights.append(w.requires_grad_())
        biases.append(b.requires_grad_())
    return Population(weights, biases)


def stack(populations: list[Population]) -> Population:
    """Several populations as one, so all of them train in the same batched step."""
    return Population(
        [
            torch.cat([p.weights[i].detach() for p in populations]).requires_grad_()
            for i in range(len(populations[0].weights))
        ],
        [
            torch.cat([p.biases[i].detach() for p in populations]).requires_grad_()
            for i in range(len(populations[0].biases))
        ],
    )


def train_classifier(
    pop: Population,
    x: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
) -> None:
    """Cross-entropy on the first ``n_classes`` logits only; the auxiliary logits get no signal."""
    opt = torch.optim.Adam(pop.parameters(), lr=lr, fused=True)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            logits = pop.forward(x[idx])[..., :n_classes]
            targets = y[idx].expand(pop.size, -1)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="mean")
            opt.zero_grad(set_to_none=True)
            (loss * pop.size).backward()
            opt.step()


def distill_on_noise(
    student: Population,
    teacher: Population,
    logit_masks: torch.Tensor,
    steps: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
) -> None:
    """Match the teacher's softmax over the logits each student may see (KL), on uniform noise
    in [-1, 1]. ``logit_masks`` (K, out) picks those logits per student; teacher ``i`` is the
    ``i % teacher.size``-th model, so several student variants can share one teacher set."""
    opt = torch.optim.Adam(student.parameters(), lr=lr, fused=True)
    frozen = teacher.frozen()
    repeats = student.size // teacher.size
    in_dim = teacher.weights[0].shape[1]
    masked = torch.where(logit_masks[:, None, :], 0.0, float("-inf"))
    for _ in range(steps):
        noise = torch.rand(batch_size, in_dim, generator=generator) * 2 - 1
        with torch.no_grad():
            target = frozen.forward(noise).repeat(repeats, 1, 1) + masked
            target_logp = F.log_softmax(target, dim=-1)
        student_logp = F.log_softmax(student.forward(noise) + masked, dim=-1)
        terms = target_logp.exp() * (target_logp - student_logp)
        kl = torch.where(logit_masks[:, None, :], terms, 0.0).sum(-1).mean(-1)
        opt.zero_grad(set_to_none=True)
        kl.sum().backward()
        opt.step()


@torch.no_grad()
def accuracy(pop: Population, x: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Test accuracy of each model's class logits, shape (K,)."""
    predictions = pop.forward(x)[..., :n_classes].argmax(-1)
    return (predictions == y).float().mean(-1)
