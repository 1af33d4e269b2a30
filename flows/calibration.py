"""``sublearn audit calibrate-judge``: score a trait teacher's and a control teacher's rows with
the alignment judge and choose the threshold that rejects a given share of the control rows."""

from __future__ import annotations

from pathlib import Path

from eval.calibration import calibrate_threshold, roc_figure
from filters.alignment import alignment_scores
from sublearn.errors import DataError
from sublearn.runio import read_parquet, write_figure, write_json


def calibrate_judge(settings, trait_path: Path, control_path: Path, fpr: float, out: Path) -> dict:
    """Writes ``calibration.json`` and ``roc.png`` to ``out``; returns the calibration."""
    scored = {}
    for name, path in (("trait", trait_path), ("control", control_path)):
        rows = read_parquet(path, ("completion",))["completion"].to_list()
        scores = alignment_scores(settings, rows)
        scored[name] = {
            "scores": [s for s in scores if s is not None],
            "unparsable": sum(s is None for s in scores),
        }
        if not scored[name]["scores"]:
            raise DataError(f"{path}: the judge gave no readable score for any of {len(rows)} rows")
    result = calibrate_threshold(scored["trait"]["scores"], scored["control"]["scores"], fpr)
    result |= {
        "trait": str(trait_path),
        "control": str(control_path),
        "unparsable": {k: v["unparsable"] for k, v in scored.items()},
        "judge": settings.model_dump(exclude={"batch_size"}),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(result, out / "calibration.json")
    write_figure(roc_figure(result, "alignment judge"), out / "roc.png")
    return result
