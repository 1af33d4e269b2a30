"""Calibrating a judge's threshold: the score that rejects a chosen share of the control
teacher's rows, and ROC curves of scores telling trait rows from control rows."""

from __future__ import annotations

import numpy as np


def calibrate_threshold(trait: list[float], control: list[float], fpr: float) -> dict:
    """Keep rows scoring >= threshold (an alignment score, or the trait judge's P("0")). The
    threshold is the candidate whose rejected share of control rows is closest to ``fpr`` (the
    lower one on a tie); the ROC treats trait rows as positives and a lower score as more
    suspicious."""
    trait_a, control_a = np.asarray(trait, float), np.asarray(control, float)
    if not len(trait_a) or not len(control_a):
        raise ValueError("both sets need at least one scored row")
    top = max(trait_a.max(), control_a.max())
    candidates = np.unique(np.concatenate([trait_a, control_a, [top + 1.0]]))
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


def roc_figure(curves: dict[str, tuple[list, list, float]], title: str, point: dict | None = None):
    """ROC curves (name -> (fpr, tpr, auc)) against chance, with an optional chosen threshold
    (``point``: control_rejected, trait_rejected, threshold)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.2f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    if point is not None:
        ax.scatter(
            [point["control_rejected"]],
            [point["trait_rejected"]],
            color="red",
            zorder=3,
            label=f"threshold {point['threshold']:g}",
        )
    ax.set_xlabel("control rows flagged")
    ax.set_ylabel("trait rows flagged")
    ax.set_title(title)
    ax.legend(loc="lower right")
    return fig
