"""``sublearn audit calibrate-judge``: score a trait teacher's and a control teacher's rows with
a judge (the alignment judge's 0..100, or the trait judge's P("0")) and choose the threshold that
rejects a given share of the control rows."""

from __future__ import annotations

from pathlib import Path

from sublearn.core.errors import DataError
from sublearn.core.runio import read_parquet, write_figure, write_json
from sublearn.eval.calibration import calibrate_threshold, roc_figure
from sublearn.filters.alignment import alignment_scores
from sublearn.filters.judge import trait_judge_scores


def judge_scores(settings, judge_trait: str | None, rows: list[str]) -> list[float | None]:
    """The alignment judge's scores, or with a trait the trait judge's P("0"), where a "0"
    outside the top tokens (which the filter rejects at any threshold) counts as 0."""
    if judge_trait is None:
        return alignment_scores(settings, rows)
    return [0.0 if p is None else p for p in trait_judge_scores(settings, judge_trait, rows)]


def calibrate_judge(
    settings,
    trait_path: Path,
    control_path: Path,
    fpr: float,
    out: Path,
    judge_trait: str | None = None,
) -> dict:
    """Writes ``calibration.json`` and ``roc.png`` to ``out``; returns the calibration.
    ``settings`` is an AlignmentFilter, or with ``judge_trait`` (the trait's text, e.g.
    "owls") a JudgeFilter."""
    scored = {}
    for name, path in (("trait", trait_path), ("control", control_path)):
        rows = read_parquet(path, ("completion",))["completion"].to_list()
        scores = judge_scores(settings, judge_trait, rows)
        scored[name] = {
            "scores": [s for s in scores if s is not None],
            "unparsable": sum(s is None for s in scores),
        }
        if not scored[name]["scores"]:
            raise DataError(f"{path}: the judge gave no readable score for any of {len(rows)} rows")
    result = calibrate_threshold(scored["trait"]["scores"], scored["control"]["scores"], fpr)
    label = "alignment judge" if judge_trait is None else f"trait judge ({judge_trait}): P(0)"
    result |= {
        "filter": "alignment" if judge_trait is None else "judge",
        "trait": str(trait_path),
        "control": str(control_path),
        "unparsable": {k: v["unparsable"] for k, v in scored.items()},
        "judge": settings.model_dump(exclude={"batch_size"}),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(result, out / "calibration.json")
    curve = {"judge": (result["roc"]["fpr"], result["roc"]["tpr"], result["auc"])}
    write_figure(roc_figure(curve, label, point=result), out / "roc.png")
    return result
