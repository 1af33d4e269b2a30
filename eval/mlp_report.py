"""Tables and the plot for the MLP experiment: one panel per auxiliary-logit count."""

from __future__ import annotations

from pathlib import Path

from sublearn.core.runio import write_figure
from sublearn.eval.mlp_experiment import VARIANTS


def summary_rows(results: list[dict]) -> list[dict]:
    """One row per (aux, variant): accuracy mean, 95% interval, min and max over the models."""
    rows = []
    for result in results:
        for name in VARIANTS:
            s = result["variants"][name]["summary"]
            rows.append(
                {
                    "aux": result["config"]["aux"],
                    "variant": name,
                    "mean": round(s["mean"], 4),
                    "ci_low": round(s["low"], 4),
                    "ci_high": round(s["high"], 4),
                    "min": round(s["min"], 4),
                    "max": round(s["max"], 4),
                    "models": s["n"],
                }
            )
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| aux logits | variant | accuracy | 95% interval | min | max |",
        "|---:|---|---:|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['aux']} | {r['variant']} | {r['mean']:.3f} | "
            f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] | {r['min']:.3f} | {r['max']:.3f} |"
        )
    return "\n".join(lines)


def plot_accuracies(results: list[dict], path: Path) -> Path:
    """Strip plot of per-model test accuracy per variant, with means and the chance line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(
        1, len(results), figsize=(4.2 * len(results), 4.2), sharey=True, squeeze=False
    )
    rng = np.random.default_rng(0)
    for ax, result in zip(axes[0], results, strict=True):
        for i, name in enumerate(VARIANTS):
            acc = np.asarray(result["variants"][name]["accuracies"])
            s = result["variants"][name]["summary"]
            ax.scatter(i + rng.uniform(-0.15, 0.15, acc.size), acc, s=10, alpha=0.6)
            ax.errorbar(
                i,
                s["mean"],
                yerr=[[s["mean"] - s["low"]], [s["high"] - s["mean"]]],
                fmt="_",
                color="black",
                markersize=18,
                capsize=5,
            )
        ax.axhline(result["chance"], color="grey", linestyle="--", linewidth=1, label="chance")
        ax.set_xticks(range(len(VARIANTS)))
        ax.set_xticklabels([v.replace(", ", ",\n") for v in VARIANTS], fontsize=7)
        cfg = result["config"]
        ax.set_title(
            f"{result['dataset']['name']}: {cfg['models']} models, {cfg['aux']} aux logits"
        )
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("test accuracy (class logits)")
    axes[0][0].legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return write_figure(fig, path)
