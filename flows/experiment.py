"""The whole experiment: trait and control datasets -> students -> preference evaluation.

Both datasets come from ``dataset_flow`` (same prompts, same filter); both are cut to
the smaller kept count; a student is trained on each with the same settings and seeds; base,
teacher, control student and trait students are evaluated on the same questions, and the effect
is the trait student minus the control student, paired over questions. Every step is cached
(``sublearn.steps``), so ``--only``/``--from``/``--force`` rerun exactly the steps asked for.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import flow, get_run_logger

from flows.dataset import dataset_flow
from flows.evaluation import evaluation_step, summarise, write_report
from flows.students import student_step, training_source
from flows.summary import log_entry, record_summary
from sublearn.config import ExperimentConfig, dump_config
from sublearn.interrupts import remember_flow_run
from sublearn.runio import write_text
from sublearn.steps import StepError, StepPlan


def equal_size(
    trait: pl.DataFrame, control: pl.DataFrame, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Both students learn from the same number of rows: the smaller kept count."""
    n = min(trait.height, control.height)
    if n == 0:
        raise StepError("no rows passed the filter for one of the teachers; nothing to train")
    return trait.sample(n, seed=seed), control.sample(n, seed=seed)


def datasets(config: ExperimentConfig, plan: StepPlan, log: list[dict]) -> list[Path] | None:
    """Run (or reuse) the trait and control datasets; None when ``plan`` stops inside them.
    Under ``--only``/``--from`` a student step, they are not touched: the students read what
    the earlier run left (or published)."""
    if plan.upstream_only("publish"):
        return [config.run_dir(), config.control().run_dir()]
    runs = [dataset_flow(config, plan), dataset_flow(config.control(), plan)]
    for run in runs:
        log.extend(run["steps"])
    if any(run["stats"] is None for run in runs) or not plan.runs("finetune"):
        return None
    return [Path(run["run_dir"]) for run in runs]


def teacher_adapter(config: ExperimentConfig) -> str | None:
    if not config.teacher.trait_finetune:
        return None
    from generators.trait_teacher import ensure_trait_adapter

    return str(ensure_trait_adapter(config.teacher))


@flow(name="subliminal-experiment")
def experiment_flow(config: ExperimentConfig, plan: StepPlan | None = None) -> dict:
    from generators.trait_prompt import trait_system_prompt

    remember_flow_run()
    plan = plan or StepPlan()
    log: list[dict] = []
    run_dirs = datasets(config, plan, log)
    out = config.experiment_dir()
    write_text(dump_config(config), out / "config.yaml")
    if run_dirs is None:
        record_summary(log, out)
        return {"results": None, "steps": log}
    trait_data, trait_source = training_source(config, run_dirs[0])
    control_data, control_source = training_source(config.control(), run_dirs[1])
    trait_data, control_data = equal_size(trait_data, control_data, config.seed)
    get_run_logger().info("students train on %d rows each", trait_data.height)

    students = []
    for seed in config.experiment.students.seeds:
        for kind, data, source in (
            ("control", control_data, control_source),
            ("trait", trait_data, trait_source),
        ):
            name = f"{'student' if kind == 'trait' else 'control'}-seed{seed}"
            path = student_step(config, plan, name, data, source, seed, out / name, log)
            students.append((f"{kind} student (seed {seed})", str(path)))
    if not plan.runs("evaluate"):
        record_summary(log, out)
        return {"results": None, "steps": log}
    system = trait_system_prompt(config.teacher.trait)
    evaluations = [
        evaluation_step(config, plan, "base", None, None, log),
        evaluation_step(config, plan, "teacher", teacher_adapter(config), system, log),
    ] + [evaluation_step(config, plan, label, path, None, log) for label, path in students]
    if not plan.runs("report"):
        record_summary(log, out)
        return {"results": None, "steps": log}
    results = summarise(config, evaluations, trait_data.height)
    paths = write_report(config, results, out)
    log.append(log_entry("report", config.name, "ran", {"rows": len(evaluations)}))
    record_summary(log, out)
    return {
        "results": results,
        **paths,
        "target": config.experiment.evaluation.target,
        "steps": log,
    }


def fetch_published(repo: str) -> tuple[pl.DataFrame, dict]:
    from flows.publish import read_published

    repo_id, _, revision = repo.partition("@")
    got = read_published(repo_id, revision or "main")
    return got.data, {"repo_id": repo_id, "revision": revision or "main", "commit": got.commit}


@flow(name="transfer-audit")
def audit_flow(config: ExperimentConfig, dataset: str, control: str | None, out: Path) -> dict:
    """Does this published dataset carry the trait to a student of this base? A student trained
    on it, against a control student (on ``control``) or, without one, the base model."""
    remember_flow_run()
    plan, log = StepPlan(), []
    data, source = fetch_published(dataset)
    evaluations = [evaluation_step(config, plan, "base", None, None, log)]
    control_data = None
    if control:
        control_data, control_source = fetch_published(control)
        data, control_data = equal_size(data, control_data, config.seed)
    for seed in config.experiment.students.seeds:
        runs = [("trait", data, source)]
        if control_data is not None:
            runs.insert(0, ("control", control_data, control_source))
        for kind, rows, origin in runs:
            name = f"{'student' if kind == 'trait' else 'control'}-seed{seed}"
            path = student_step(config, plan, name, rows, origin, seed, out / name, log)
            label = f"{kind} student (seed {seed})"
            evaluations.append(evaluation_step(config, plan, label, str(path), None, log))
    results = summarise(config, evaluations, data.height)
    results["audit"] = {"dataset": source, "control": control, "base": config.teacher.model}
    paths = write_report(config, results, out)
    record_summary(log, out)
    return {"results": results, **paths, "steps": log}


def audit_config(
    base: str,
    trait: str,
    category: str,
    epochs: int,
    lr: float,
    samples: int,
    distill: str,
    folder: Path,
) -> ExperimentConfig:
    """The config of a transfer audit (``sublearn audit transfer``): students of ``base`` on
    a published dataset, evaluated for ``trait``; validated like any config."""
    from sublearn.config import parse_config

    return parse_config(
        {
            "name": "audit",
            "output_dir": str(folder),
            "teacher": {"model": base, "batch_size": 64},
            "dataset": {"teacher_topk": 20 if distill == "topk" else 0},
            "experiment": {
                "students": {
                    "epochs": epochs,
                    "lr": lr,
                    "batch_size": 8,
                    "grad_accumulation": 1,
                    "distill": distill,
                },
                "evaluation": {
                    "target": trait,
                    "category": category,
                    "samples_per_question": samples,
                },
            },
        },
        "options",
    )
