"""The experiment's plots: each arm's shift from base, the panel and sampled P(target)
(``preference.png``), and specificity along training (``checkpoints.png``)."""

from __future__ import annotations

from pathlib import Path

from sublearn.core.runio import write_figure
from sublearn.eval.preference_report import CURVE_ARMS, interval
from sublearn.eval.results import ExperimentResults

ARM_COLOURS = {
    "trait": "#c0392b",
    "neutral": "#7f8c8d",
    "control": "#2e86c1",
    "crossinit": "#e67e22",
}


def plot_preference(results: ExperimentResults, path: Path) -> Path:
    """Three panels: each student arm's shift of log P(target) from base (a dot per seed, the
    pooled mean and interval), the panel's shifts (target in colour, the others' mean as a
    line), and sampled P(target) per model as dots with intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = results.target
    fig, (arms_ax, panel_ax, p_ax) = plt.subplots(
        1, 3, figsize=(15, 4.4), gridspec_kw={"width_ratios": [1, 2.2, 1.4]}
    )
    from_base = results.shifts_from_base
    for x, (arm, shift) in enumerate(from_base.items()):
        colour = ARM_COLOURS[arm]
        seeds = shift.per_seed
        arms_ax.scatter([x + 0.12] * len(seeds), seeds, color=colour, alpha=0.6, s=18)
        arms_ax.errorbar(
            x - 0.08,
            shift.mean,
            yerr=[[shift.mean - shift.low], [shift.high - shift.mean]],
            fmt="o",
            color=colour,
            capsize=4,
        )
    arms_ax.axhline(0, color="black", lw=0.8)
    arms_ax.set_xticks(range(len(from_base)))
    arms_ax.set_xticklabels([f"{a}\nstudent" for a in from_base], fontsize=8)
    arms_ax.set_xlim(-0.6, len(from_base) - 0.4)
    arms_ax.set_ylabel(f"log P({target}) minus base (nats)")
    teacher = results.teacher_shift_from_base
    title = "shift from base (dots: seeds)"
    arms_ax.set_title(title + (f"\nteacher: {teacher:+.1f}" if teacher is not None else ""))

    shifts = results.panel_shifts.shifts
    words = sorted(shifts, key=lambda w: -shifts[w].mean)
    for x, word in enumerate(words):
        s = shifts[word]
        panel_ax.errorbar(
            x,
            s.mean,
            yerr=[[s.mean - s.low], [s.high - s.mean]],
            fmt="o",
            capsize=3,
            color="#c0392b" if word == target else "#5d6d7e",
        )
    others = [shifts[w].mean for w in results.others]
    panel_ax.axhline(sum(others) / len(others), color="#5d6d7e", ls="--", lw=1)
    panel_ax.axhline(0, color="black", lw=0.8)
    panel_ax.set_xticks(range(len(words)))
    panel_ax.set_xticklabels(words, rotation=60, fontsize=8)
    head = results.headline
    panel_ax.set_title(
        f"trait student minus {results.panel_shifts.against}, per answer; "
        f"specificity {interval(head.specificity)}",
        fontsize=9,
    )
    panel_ax.set_ylabel("log P shift (nats); dashed: others' mean")

    rows = results.table
    for y, r in enumerate(rows):
        p_ax.errorbar(
            r.p_target,
            y,
            xerr=[[r.p_target - r.p_low], [r.p_high - r.p_target]],
            fmt="o",
            capsize=3,
            color="#34495e",
        )
    p_ax.set_yticks(range(len(rows)))
    p_ax.set_yticklabels([r.model for r in rows], fontsize=7)
    p_ax.invert_yaxis()
    p_ax.set_xscale("symlog", linthresh=0.01)
    p_ax.set_xlim(0, 1)
    p_ax.set_xlabel(f"sampled P({target})")
    p_ax.set_title(f"sampled P({target})")
    fig.suptitle(f"Transfer of '{target}': {head.verdict}", fontsize=10)
    fig.tight_layout()
    return write_figure(fig, path)


def plot_checkpoints(results: ExperimentResults, path: Path) -> Path:
    """Specificity (mean and 95% interval) against optimiser steps, one line per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = results.checkpoints
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for arm, name in CURVE_ARMS.items():
        points = [p for p in curve if getattr(p, arm) is not None]
        if not points:
            continue
        steps = [p.step for p in points]
        effect = [getattr(p, arm).specificity for p in points]
        colour = ARM_COLOURS[arm]
        ax.plot(steps, [e.mean for e in effect], "o-", color=colour, label=name)
        ax.fill_between(
            steps, [e.low for e in effect], [e.high for e in effect], color=colour, alpha=0.2
        )
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("optimiser steps")
    ax.set_ylabel(f"specificity of {results.target} (nats)")
    ax.set_title(f"against the {curve[-1].trait.against} students at the same step")
    ax.legend()
    fig.tight_layout()
    return write_figure(fig, path)
