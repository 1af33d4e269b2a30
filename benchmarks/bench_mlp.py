"""A population of K MLPs trained as batched tensors vs a Python loop over K separate models.

Times one teacher-training epoch on the offline digits set (same data, batch size, optimiser)
both ways, in the same run. Target (issue 6): batched >= 10x at K=100.
Run: python benchmarks/bench_mlp.py [--models 100]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from sublearn.eval.mlp_data import load_digit_images
from sublearn.eval.mlp_population import init_population, train_classifier


def loop_epoch(models: list[nn.Module], x, y, batch: int, gen: torch.Generator) -> None:
    """The baseline: each model its own forward, backward and Adam step."""
    optimisers = [torch.optim.Adam(m.parameters(), lr=3e-4, fused=True) for m in models]
    order = torch.randperm(len(x), generator=gen)
    for start in range(0, len(x), batch):
        idx = order[start : start + batch]
        for model, opt in zip(models, optimisers, strict=True):
            loss = nn.functional.cross_entropy(model(x[idx])[:, :10], y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    data = load_digit_images("digits")
    sizes = [data.n_inputs, 256, 256, 13]
    gen = torch.Generator().manual_seed(0)

    pop = init_population(args.models, sizes, gen)
    train_classifier(pop, data.x_train, data.y_train, 10, 1, args.batch, 3e-4, gen)  # warm-up
    start = time.perf_counter()
    train_classifier(pop, data.x_train, data.y_train, 10, args.epochs, args.batch, 3e-4, gen)
    t_batched = (time.perf_counter() - start) / args.epochs

    models = [
        nn.Sequential(
            nn.Linear(sizes[0], 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 13)
        )
        for _ in range(args.models)
    ]
    loop_epoch(models[:2], data.x_train, data.y_train, args.batch, gen)  # warm-up
    start = time.perf_counter()
    for _ in range(args.epochs):
        loop_epoch(models, data.x_train, data.y_train, args.batch, gen)
    t_loop = (time.perf_counter() - start) / args.epochs

    print(f"K={args.models} models, digits ({len(data.x_train)} train images), batch {args.batch}")
    print(f"python loop over models: {t_loop:7.2f} s/epoch")
    print(f"batched population     : {t_batched:7.2f} s/epoch")
    print(f"speed-up: {t_loop / t_batched:.1f}x  (target >= 10x)")


if __name__ == "__main__":
    main()
