"""Summary statistics with intervals, as pure functions over arrays of per-unit values."""

from __future__ import annotations

import numpy as np
from scipy import stats as sps


def mean_ci(values, level: float = 0.95) -> dict:
    """Mean with a Student-t interval over the units (models, questions), plus min and max."""
    v = np.asarray(values, dtype=float)
    n = v.size
    mean = float(v.mean())
    if n < 2:
        return {"mean": mean, "low": mean, "high": mean, "min": mean, "max": mean, "n": int(n)}
    half = float(sps.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / np.sqrt(n))
    return {
        "mean": mean,
        "low": mean - half,
        "high": mean + half,
        "min": float(v.min()),
        "max": float(v.max()),
        "n": int(n),
    }


def seed_question_bootstrap(
    diffs, n_boot: int = 10_000, level: float = 0.95, seed: int = 0
) -> dict:
    """Mean of a (seeds, questions) array of paired differences with a two-stage percentile
    bootstrap: seeds resampled, then questions (the same questions for every seed, since each
    seed's students answer the same ones). The interval covers training randomness and
    question-to-question variation; with one seed it is the paired percentile bootstrap over
    questions (scipy.stats.bootstrap's, which the tests compare it with). Written here because
    no library resamples two crossed levels like this: scipy's resamples each sample alone."""
    d = np.asarray(diffs, dtype=float)
    if d.ndim != 2 or d.size == 0:
        raise ValueError("seed_question_bootstrap needs a non-empty (seeds, questions) array")
    seeds, questions = d.shape
    rng = np.random.default_rng(seed)
    picked_seeds = rng.integers(0, seeds, size=(n_boot, seeds))
    picked_questions = rng.integers(0, questions, size=(n_boot, questions))
    means = np.empty(n_boot)
    for b in range(n_boot):
        means[b] = d[np.ix_(picked_seeds[b], picked_questions[b])].mean()
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return {
        "mean": float(d.mean()),
        "low": float(low),
        "high": float(high),
        "per_seed": d.mean(axis=1).tolist(),
        "seeds": seeds,
        "n": questions,
    }
