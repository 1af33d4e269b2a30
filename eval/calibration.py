"""Calibrating the alignment judge's threshold: the score that rejects a chosen share of the
control teacher's rows, and the ROC curve of the judge telling trait rows from control rows."""

from __future__ import annotations

import numpy as np


def calibrate_threshold(trait: list[float], control: list[float], fpr: float) -> dict:
    """Keep rows scoring >= threshold. The threshold is the candidate whose rejected share of
    control rows is closest to ``fpr`` (the lower one on a tie); the ROC treats trait rows as
    positives and a lower alignment score as more suspicious."""
    trait_a, control_a = np.asarray(trait, float), np.asarray(control, float)
    if not len(trait_a) or not len(control_a):
        raise ValueError("both sets need at least one scored row")
    candidates = np.unique(np.concatenate([trait_a, control_a, [101.0]]))
    rejected = np.array([(control_a < t).mean() for t in candidates])
    best = int(np.argmin(np.abs(rejected - fpr)))
    threshold = float(candidates[best])
    from sklearn.metrics import roc_auc_score, roc_curve

    labels = np.concatenate([np.ones(len(trait_a)), np.zeros(len(control_a))])
    suspicion = -np.concatenate([trait_a, control_a])
    roc_fpr, roc_tpr, _ = roc_curve(labels, suspicion)
    return {
        "threshold": threshold,
        "target_fpr": fpr,
        "control_rejected": float(rejected[best]),
        "trait_rejected": float((trait_a < threshold).mean()),
        "auc": float(roc_auc_score(labels, suspicion)),
        "n_trait": len(trait_a),
        "n_control": len(control_a),
        "roc": {"fpr": roc_fpr.tolist(), "tpr": roc_tpr.tolist()},
    }


def roc_figure(result: dict, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(result["roc"]["fpr"], result["roc"]["tpr"], label=f"judge (AUC {result['auc']:.2f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    ax.scatter(
        [result["control_rejected"]],
        [result["trait_rejected"]],
        color="red",
        zorder=3,
        label=f"threshold {result['threshold']:g}",
    )
    ax.set_xlabel("control rows rejected")
    ax.set_ylabel("trait rows rejected")
    ax.set_title(title)
    ax.legend(loc="lower right")
    return fig
