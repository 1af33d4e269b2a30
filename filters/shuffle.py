"""The study's shuffled control: the same numbers in a random order, before students train.

If a trait travels through which numbers a teacher picks, shuffling them within each response
keeps it; if it travels through their order, shuffling breaks it. The study saw transfer fall
sharply with either shuffle. ``within`` permutes each response's numbers in place; ``across``
pools every response's numbers and deals them back at random, each response keeping its count
and its separators. Pure: the same rows and seed give the same output.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

NUMBER = re.compile(r"\d+")


def _refill(text: str, numbers) -> str:
    supply = iter(numbers)
    return NUMBER.sub(lambda _: next(supply), text)


def shuffle_numbers(frame: pl.DataFrame, mode: str, seed: int) -> pl.DataFrame:
    """``frame`` with each ``completion``'s numbers shuffled (mode none, within or across)."""
    if mode == "none":
        return frame
    if mode not in ("within", "across"):
        raise ValueError(f"shuffle: {mode!r} is not none, within or across")
    rng = np.random.default_rng(seed)
    texts = frame["completion"].to_list()
    found = [NUMBER.findall(t) for t in texts]
    if mode == "within":
        dealt = [list(rng.permutation(n)) if n else [] for n in found]
    else:
        pool = [x for n in found for x in n]
        pool = list(rng.permutation(pool)) if pool else []
        bounds = np.cumsum([0] + [len(n) for n in found])
        dealt = [pool[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    shuffled = [_refill(t, [str(x) for x in d]) for t, d in zip(texts, dealt, strict=True)]
    return frame.with_columns(pl.Series("completion", shuffled, dtype=pl.String))
