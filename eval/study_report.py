"""The study's table and dose-response plot: each cell's specificity and sampled P(target)
effect against rows per student, one panel per target, one line per distillation target."""

from __future__ import annotations

from pathlib import Path

from sublearn.core.runio import write_figure


def _interval(e: dict, digits: int = 2) -> str:
    return f"{e['mean']:+.{digits}f} [{e['low']:+.{digits}f}, {e['high']:+.{digits}f}]"


def study_markdown(study: dict) -> str:
    lines = [
        f"# Study {study['name']}: dose-response",
        "",
        f"Each row is one experiment (its own report beside it). Ran on {study['cpu']}. "
        "Specificity: the target's log P shift (trait student minus the reference) minus the "
        "other panel answers' mean shift; intervals over seeds, then questions.",
        "",
        "| target | distill | rows | against | specificity | placebo rank | held-out "
        "specificity | P(target) difference | verdict |",
        "|---|---|---:|---|---|---:|---|---|---|",
    ]
    for c in study["cells"]:
        held = _interval(c["heldout_specificity"]) if c["heldout_specificity"] else "-"
        lines.append(
            f"| {c['target']} | {c['distill']} | {c['rows_per_student']} | {c['against']} | "
            f"{_interval(c['specificity'])} | {c['placebo_rank']} | {held} | "
            f"{_interval(c['p_target'], 3)} | "
            f"{c['verdict']} |"
        )
    lines += ["", "![dose-response](dose-response.png)", ""]
    return "\n".join(lines)


def plot_dose_response(study: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = list(dict.fromkeys(c["target"] for c in study["cells"]))
    fig, axes = plt.subplots(
        2, len(targets), figsize=(max(4.6 * len(targets), 7), 7), squeeze=False, sharex=True
    )
    rows = sorted({c["rows_per_student"] for c in study["cells"]})
    styles = {"sampled": ("#c0392b", "o"), "topk": ("#2e86c1", "s")}
    for column, target in enumerate(targets):
        cells = [c for c in study["cells"] if c["target"] == target]
        for row, key, label in (
            (0, "specificity", "specificity (nats)"),
            (1, "p_target", f"sampled P({target}) difference"),
        ):
            ax = axes[row][column]
            for distill, (colour, marker) in styles.items():
                line = sorted(
                    (c for c in cells if c["distill"] == distill),
                    key=lambda c: c["rows_per_student"],
                )
                if not line:
                    continue
                x = [c["rows_per_student"] for c in line]
                y = [c[key]["mean"] for c in line]
                ax.errorbar(
                    x,
                    y,
                    yerr=[
                        [c[key]["mean"] - c[key]["low"] for c in line],
                        [c[key]["high"] - c[key]["mean"] for c in line],
                    ],
                    color=colour,
                    marker=marker,
                    capsize=4,
                    label=distill,
                )
            ax.axhline(0, color="black", lw=0.8)
            ax.set_xscale("log")
            ax.set_xticks(rows, [str(r) for r in rows])
            ax.minorticks_off()
            ax.set_ylabel(label)
            if row == 0:
                ax.set_title(f"'{target}'")
                ax.legend(fontsize=8)
            else:
                ax.set_xlabel("rows per student")
    fig.suptitle(f"{study['name']}: effect against rows per student\n(95% intervals)", fontsize=11)
    fig.tight_layout()
    return write_figure(fig, path)
