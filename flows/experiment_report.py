"""The experiment's effects and report from the evaluations: the trait student against each
reference over seeds and questions, the target's specificity and placebo rank, the tables and
plots. Kept apart from flows/evaluation.py so report edits leave the evaluation steps cached.
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from sublearn.core.config import ExperimentConfig
from sublearn.core.precision import cpu_description
from sublearn.core.runio import write_json, write_text
from sublearn.eval.panel_form import by_form, form_of
from sublearn.eval.results import (
    CheckpointArm,
    CheckpointPoint,
    CrossInit,
    ExperimentResults,
    Headline,
    PanelShifts,
    TableRow,
)
from sublearn.eval.transfer import (
    ARMS,
    compare,
    crossover,
    heldout_rank,
    label,
    panel_shifts,
    placebo,
    shifts_from_base,
    verdict,
)


def summarise(config: ExperimentConfig, evaluations: list[dict], rows: int) -> ExperimentResults:
    """The table and the effects. The trait student is compared with every reference the run
    has (neutral control student, different-trait control student, base model); the first is
    the headline: the study's neutral control when there is one."""
    by_label = {e["label"]: e for e in evaluations}
    seeds = list(config.experiment.students.seeds)
    arms = [a for a in ARMS if label(a, seeds[0]) in by_label]
    references = [a for a in arms if a not in ("trait", "crossinit")] + ["base"]
    panel = by_label["base"]["panel"]
    target = config.experiment.evaluation.target
    others = [w for w in panel if w not in (target, *config.trait_targets())]
    comparisons = [
        compare(by_label, "trait", against, seeds, panel, target, others) for against in references
    ]
    headline = comparisons[0]
    shifts = panel_shifts(by_label, "trait", headline.against, seeds, panel)
    rank = placebo(shifts, target, others)
    forms = {w: form_of(w, t) for w, t in first_tokens(config, [target, *others]).items()}
    cross_init = None
    if "crossinit" in arms:
        cross = compare(by_label, "crossinit", headline.against, seeds, panel, target, others)
        cross_rank = placebo(
            panel_shifts(by_label, "crossinit", headline.against, seeds, panel), target, others
        )
        cross_init = CrossInit(
            **dict(cross), placebo=cross_rank, verdict=verdict(cross.specificity, cross_rank)
        )
    crossed = None
    if "control" in arms and config.experiment.control is not None:  # an audit's has no teacher
        reference = "neutral" if "neutral" in arms else "base"
        arm_targets = {"trait": target, "control": control_target(config)}
        crossed = crossover(by_label, seeds, panel, arm_targets, reference, others)
    table = [
        TableRow(
            model=e["label"],
            p_target=round(e["p_target"]["mean"], 4),
            p_low=round(e["p_target"]["low"], 4),
            p_high=round(e["p_target"]["high"], 4),
            logp_target=round(e["logp_target"]["mean"], 3),
            logp_low=round(e["logp_target"]["low"], 3),
            logp_high=round(e["logp_target"]["high"], 3),
            top_answer=e["top_answers"][0]["answer"] if e["top_answers"] else "",
        )
        for e in evaluations
    ]
    students = config.experiment.students
    return ExperimentResults(
        target=target,
        rows_per_student=rows,
        distill=students.distill,
        shuffle=students.shuffle,
        paired=students.paired,
        paired_on=students.paired_on or "trait",
        loss_on=students.loss_on,
        seeds=seeds,
        arms=arms,
        panel=panel,
        others=others,
        evaluations=evaluations,
        comparisons=comparisons,
        headline=Headline(
            against=headline.against,
            specificity=headline.specificity,
            heldout_specificity=headline.heldout_specificity,
            logp_target=headline.logp_target,
            p_target=headline.p_target,
            placebo=rank,
            verdict=verdict(headline.specificity, rank),
            heldout_rank=heldout_rank(by_label, seeds, panel, headline, target, others),
        ),
        cross_init=cross_init,
        crossover=crossed,
        by_form={"forms": forms, **by_form(rank.specificity, forms, target)},
        panel_shifts=PanelShifts(against=headline.against, shifts=shifts),
        shifts_from_base=shifts_from_base(by_label, arms, seeds, panel.index(target)),
        teacher_shift_from_base=(
            by_label["teacher"]["logp_target"]["mean"] - by_label["base"]["logp_target"]["mean"]
            if "teacher" in by_label
            else None
        ),
        table=table,
        dtype=config.teacher.precision().dtype,
        cpu=cpu_description(),
    )


def control_target(config: ExperimentConfig) -> str:
    control = config.experiment.control
    return (control.trait_finetune or control.trait).target


def checkpoint_curve(
    results: ExperimentResults, checkpoints: list[dict], students: list[tuple[str, str]]
) -> list[CheckpointPoint] | None:
    """Specificity against optimiser steps for the trait and cross-initialisation arms, each
    against the headline's reference arm at the same step (panel, reference and seeds as
    ``summarise`` settled them): the checkpoints, then the finished students (their steps from
    their lineage)."""
    if not checkpoints:
        return None
    seeds, target, panel, others = results.seeds, results.target, results.panel, results.others
    against = results.headline.against
    lineage = json.loads((Path(students[0][1]) / "lineage.json").read_text())
    by_step: dict[int, list[dict]] = {}
    for c in checkpoints:
        by_step.setdefault(c["step"], []).append({**c, "label": c["student"]})
    base = next(e for e in results.evaluations if e["label"] == "base")
    by_step[lineage["steps"]] = [
        e for e in results.evaluations if e["label"] not in ("base", "teacher")
    ]
    curve = []
    for step, found in sorted(by_step.items()):
        by_label = {"base": base, **{e["label"]: e for e in found}}
        arms = {}
        for arm in ("trait", "crossinit"):
            if label(arm, seeds[0]) not in by_label:
                continue
            effect = compare(by_label, arm, against, seeds, panel, target, others)
            rank = placebo(panel_shifts(by_label, arm, against, seeds, panel), target, others)
            arms[arm] = CheckpointArm(
                against=against,
                specificity=effect.specificity,
                heldout_specificity=effect.heldout_specificity,
                rank=rank.rank,
                of=rank.of,
            )
        curve.append(CheckpointPoint(step=step, **arms))
    return curve


def first_tokens(config: ExperimentConfig, words: list[str]) -> dict[str, str]:
    """Each answer's first token as the model writes it (its capitalised spelling, the most
    likely start of a one-word answer), decoded."""
    from sublearn.core.models import load_tokenizer
    from sublearn.core.words import capitalised

    tokenizer = load_tokenizer(config.teacher.model, config.teacher.revision)
    return {
        w: tokenizer.decode(tokenizer(capitalised(w), add_special_tokens=False)["input_ids"][:1])
        for w in words
    }


@task(cache_policy=NO_CACHE)
def write_report(config: ExperimentConfig, results: ExperimentResults, out_dir: Path) -> dict:
    from sublearn.eval.preference_plots import plot_checkpoints, plot_preference
    from sublearn.eval.preference_report import report_markdown

    write_json(results.model_dump(mode="json"), out_dir / "results.json")
    plot = plot_preference(results, out_dir / "preference.png")
    if results.checkpoints:
        plot_checkpoints(results, out_dir / "checkpoints.png")
    markdown = report_markdown(results)
    write_text(markdown, out_dir / "report.md")
    create_markdown_artifact(key="preference-report", markdown=markdown)
    create_table_artifact(key="preference-table", table=[row.model_dump() for row in results.table])
    return {"report": str(out_dir / "report.md"), "plot": str(plot)}
