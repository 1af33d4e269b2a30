"""A study: the experiment over a grid of targets, rows per student and distillation targets,
as one Prefect flow. Each cell is the experiment flow on a config of its own, so every step is
cached per cell and shared across cells (a target's datasets serve all of its cells, a student
trained once serves every study that asks for it); the study adds the dose-response table and
plot over the cells' headline figures."""

from __future__ import annotations

from prefect import flow, get_run_logger

from sublearn.core.config import ExperimentConfig, dump_config
from sublearn.core.interrupts import remember_flow_run
from sublearn.core.runio import write_json, write_text
from sublearn.core.steps import StepPlan
from sublearn.eval.results import ExperimentResults
from sublearn.flows.cluster import cluster
from sublearn.flows.experiment import experiment_flow
from sublearn.flows.summary import record_summary


def cell_summary(cell: dict, results: ExperimentResults, report: str) -> dict:
    """A cell's headline figures: what the dose-response plot and table show."""
    head = results.headline
    heldout = head.heldout_specificity
    return {
        **cell,
        "rows_per_student": results.rows_per_student,
        "against": head.against,
        "specificity": head.specificity.model_dump(),
        "heldout_specificity": heldout.model_dump() if heldout else None,
        "logp_target": head.logp_target.model_dump(),
        "p_target": head.p_target.model_dump(),
        "placebo_rank": f"{head.placebo.rank}/{head.placebo.of}",
        "verdict": head.verdict,
        "report": report,
    }


@flow(name="subliminal-study")
def study_flow(config: ExperimentConfig, plan: StepPlan | None = None) -> dict:
    from sublearn.eval.study_report import plot_dose_response, study_markdown

    remember_flow_run()
    plan = plan or StepPlan()
    out = config.study_dir()
    write_text(dump_config(config), out / "config.yaml")
    log: list[dict] = []
    cells = []
    with cluster(config.scale_out):  # one Ray connection for every cell
        for cell, cell_config in config.cells():
            get_run_logger().info("study cell %s", cell)
            outcome = experiment_flow(cell_config, plan)
            log.extend(outcome["steps"])
            if outcome["results"] is not None:
                cells.append(cell_summary(cell, outcome["results"], outcome["report"]))
    record_summary(log, out)
    if not cells:
        return {"results": None, "study": None, "steps": log}
    study = {"name": config.name, "cells": cells, "cpu": outcome["results"].cpu}
    write_json(study, out / "study.json")
    plot = plot_dose_response(study, out / "dose-response.png")
    write_text(study_markdown(study), out / "study.md")
    return {
        "results": None,
        "study": study,
        "report": str(out / "study.md"),
        "plot": str(plot),
        "steps": log,
    }
