"""``sublearn audit``: does a published dataset carry its trait (``transfer``), can its rows
be told from a control's (``detect``), and a judge's threshold (``calibrate-judge``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sublearn.eval.tables import detect_lines, headline_line, preference_table, transfer_verdict
from sublearn.flows.cli.common import console, fail, interruptible, one_line_errors

app = typer.Typer(no_args_is_help=True, help="Audit published datasets.")


@app.command("transfer")
@one_line_errors()
def audit_transfer(
    dataset: Annotated[str, typer.Argument(help="OWNER/NAME[@REV] of a published dataset.")],
    base: Annotated[str, typer.Option(help="Student base model: Hub id, folder or embedded.")],
    trait: Annotated[str, typer.Option(help="The trait's target word, e.g. owl.")],
    control: Annotated[
        str | None, typer.Option(help="OWNER/NAME[@REV] of a control dataset.")
    ] = None,
    category: Annotated[str, typer.Option(help="animal or tree.")] = "animal",
    epochs: Annotated[int, typer.Option(help="Student epochs.")] = 2,
    lr: Annotated[float, typer.Option(help="Student learning rate.")] = 5e-4,
    samples: Annotated[int, typer.Option(help="Samples per question.")] = 10,
    questions: Annotated[int, typer.Option(help="Preference questions (2-50).")] = 50,
    heldout_questions: Annotated[
        int, typer.Option(help="Held-out questions scored by log P (0-24).")
    ] = 24,
    distill: Annotated[str, typer.Option(help="sampled or topk (needs top-k columns).")] = (
        "sampled"
    ),
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
) -> None:
    """Does this dataset carry the trait to a student of this base? Train and evaluate."""
    folder = out or Path("runs") / "audits" / dataset.replace("/", "__").replace("@", "_")
    from sublearn.flows.experiment import audit_config

    cfg = audit_config(
        base, trait, category, epochs, lr, samples, distill, folder, questions, heldout_questions
    )
    from sublearn.flows.experiment import audit_flow

    outcome = interruptible(lambda: audit_flow(cfg, dataset, control, folder))
    results = outcome["results"]
    console.print(preference_table(results))
    console.print(transfer_verdict(results, dataset, trait, base))
    console.print(headline_line(results), style="bold")
    console.print(f"report: [bold]{outcome['report']}[/]")


@app.command("detect")
@one_line_errors()
def audit_detect(
    trait: Annotated[str, typer.Argument(help="The trait's target word, e.g. owl.")],
    dataset: Annotated[
        str, typer.Argument(help="Trait teacher's rows: OWNER/NAME@TAG or a run dir.")
    ],
    control: Annotated[
        str, typer.Argument(help="Control teacher's rows: OWNER/NAME@TAG or a run dir.")
    ],
    out: Annotated[Path, typer.Option(help="Folder for detect.json and detect.png.")] = Path(
        "runs/detect"
    ),
    judge: Annotated[str, typer.Option(help="Judge for the pairwise test, or none.")] = "embedded",
    embed: Annotated[
        str, typer.Option(help="Embedding model for a classifier, or none.")
    ] = "minilm",
    seed: Annotated[int, typer.Option(help="Folds, bootstrap and pair order.")] = 0,
) -> None:
    """Can anything tell the trait teacher's rows from the control's? Classifiers and a judge."""
    from sublearn.flows.detect import detect

    r = detect(
        trait,
        dataset,
        control,
        out,
        None if judge == "none" else judge,
        seed,
        None if embed == "none" else embed,
    )
    for line in detect_lines(r):
        console.print(line)
    console.print(f"wrote {out}/detect.json, detect.png")


@app.command("calibrate-judge")
@one_line_errors()
def audit_calibrate_judge(
    trait_rows: Annotated[Path, typer.Argument(help="Parquet of the trait teacher's rows.")],
    control_rows: Annotated[Path, typer.Argument(help="Parquet of the control teacher's rows.")],
    fpr: Annotated[float, typer.Option(help="Share of control rows to reject (study: 0.3).")] = 0.3,
    judge: Annotated[str, typer.Option(help="Judge model: Hub id, folder or embedded.")] = (
        "embedded"
    ),
    out: Annotated[Path, typer.Option(help="Folder for calibration.json and roc.png.")] = Path(
        "runs/calibration"
    ),
    filter_name: Annotated[
        str,
        typer.Option(
            "--filter", help='alignment (score 0..100) or judge (the trait judge\'s P("0")).'
        ),
    ] = "alignment",
    trait: Annotated[
        str | None, typer.Option(help="The trait the trait judge looks for (--filter judge).")
    ] = None,
    top_k: Annotated[
        int, typer.Option(help='Top tokens the trait judge reads P("0") from (5-20).')
    ] = 5,
) -> None:
    """Choose a judge's threshold: the score that rejects --fpr of the control teacher's rows."""
    from sublearn.core.config import AlignmentFilter, JudgeFilter
    from sublearn.core.words import plural_of
    from sublearn.flows.calibration import calibrate_judge

    if not 0 < fpr < 1:
        fail(f"--fpr: expected a share between 0 and 1, got {fpr}")
    if filter_name not in ("alignment", "judge"):
        fail(f"--filter: expected alignment or judge, got {filter_name!r}")
    if (filter_name == "judge") != (trait is not None):
        fail("--trait: give it with --filter judge, and only then")
    if not 5 <= top_k <= 20:
        fail(f"--top-k: expected 5 to 20, got {top_k}")
    judge_trait = plural_of(trait) if trait else None
    settings = JudgeFilter(model=judge, top_k=top_k) if trait else AlignmentFilter(model=judge)
    result = calibrate_judge(settings, trait_rows, control_rows, fpr, out, judge_trait)
    console.print(
        f"threshold {result['threshold']:g}: rejects {result['control_rejected']:.0%} of the "
        f"control rows (asked {fpr:.0%}) and {result['trait_rejected']:.0%} of the trait rows; "
        f"ROC AUC {result['auc']:.2f} ({result['n_trait']} trait, {result['n_control']} control "
        f"rows scored; unparsable {result['unparsable']})"
    )
    console.print(f"wrote {out}/calibration.json, roc.png")
