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
