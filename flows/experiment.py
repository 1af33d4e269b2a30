"""The whole experiment: one dataset per arm -> students -> preference evaluation.

Arms: the trait teacher, the study's neutral control (the same teacher without the trait) and
optionally a different-trait control. Every arm's dataset comes from ``dataset_flow`` (same
prompts, same filter chain) and is cut to the smallest kept count (optionally shuffled: the
study's shuffled control); one student per arm and seed is trained with the same settings;
base, teacher and students are evaluated on the same questions, and the effects are the trait
student minus each reference over seeds and questions (``eval.transfer``). Every step is cached
(``sublearn.core.steps``), so ``--only``/``--from``/``--force`` rerun exactly the steps asked for.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import flow, get_run_logger

from sublearn.core.config import ExperimentConfig, dump_config
from sublearn.core.interrupts import remember_flow_run
from sublearn.core.runio import write_text
from sublearn.core.steps import StepError, StepPlan
from sublearn.eval.results import Audit, CrossModelResults
from sublearn.eval.transfer import label
from sublearn.flows.dataset import dataset_flow
from sublearn.flows.evaluation import evaluation_step
from sublearn.flows.experiment_report import checkpoint_curve, summarise, write_report
from sublearn.flows.paired import divergent_only, paired_sources
from sublearn.flows.students import (
    checkpoint_folder,
    checkpoint_steps,
    shuffle_numbers,
    student_step,
    training_source,
)
from sublearn.flows.summary import log_entry, record_summary

STUDENT_FOLDERS = {
    "trait": "student",
    "neutral": "neutral",
    "control": "control",
    "crossinit": "crossinit",
}


def equal_size(
    frames: dict[str, pl.DataFrame], seed: int, rows: int | None = None
) -> list[pl.DataFrame]:
    """Every arm's students learn from the same number of rows: ``rows``, else the smallest
    kept count."""
    n = min(f.height for f in frames.values())
    if n == 0:
        raise StepError("no rows passed the filter for one of the teachers; nothing to train")
    if rows is not None:
        short = {arm: f.height for arm, f in frames.items() if f.height < rows}
        if short:
            arm, kept = next(iter(short.items()))
            raise StepError(
                f"experiment.students.rows: {rows} asked, but the {arm} teacher's dataset kept "
                f"{kept}; raise dataset.n_prompts"
            )
        n = rows
    return [f.sample(n, seed=seed) for f in frames.values()]


def datasets(config: ExperimentConfig, plan: StepPlan, log: list[dict]) -> dict | None:
    """Run (or reuse) each arm's dataset; None when ``plan`` stops inside them. Under
    ``--only``/``--from`` a student step, they are not touched: the students read what the
    earlier run left (or published)."""
    arms = config.arms()
    if plan.upstream_only("publish"):
        return {arm: arm_config.run_dir() for arm, arm_config in arms.items()}
    runs = {arm: dataset_flow(arm_config, plan) for arm, arm_config in arms.items()}
    for run in runs.values():
        log.extend(run["steps"])
    if any(run["stats"] is None for run in runs.values()):
        return None
    if not (plan.runs("finetune") or (config.experiment.students.paired and plan.runs("rescore"))):
        return None
    return {arm: Path(run["run_dir"]) for arm, run in runs.items()}


def teacher_adapter(config: ExperimentConfig) -> str | None:
    if not config.teacher.trait_finetune:
        return None
    from sublearn.generators.trait_teacher import ensure_trait_adapter

    return str(ensure_trait_adapter(config.teacher))


@flow(name="subliminal-experiment")
def experiment_flow(config: ExperimentConfig, plan: StepPlan | None = None) -> dict:
    from sublearn.generators.trait_prompt import trait_system_prompt

    remember_flow_run()
    plan = plan or StepPlan()
    log: list[dict] = []
    run_dirs = datasets(config, plan, log)
    out = config.experiment_dir()
    write_text(dump_config(config), out / "config.yaml")
    if run_dirs is None:
        record_summary(log, out)
        return {"results": None, "steps": log}
    arm_configs = config.arms()
    sources = {arm: training_source(arm_configs[arm], run_dirs[arm]) for arm in arm_configs}
    training = config.experiment.students
    divergence = None
    if training.paired and plan.runs("rescore"):
        sources, divergence = paired_sources(config, sources, plan, log)
        if training.loss_on == "divergent":
            sources = divergent_only(sources)
    if not plan.runs("finetune"):  # --to rescore: the paired targets, no students
        record_summary(log, out)
        return {"results": None, "steps": log}
    frames = equal_size({a: data for a, (data, _) in sources.items()}, config.seed, training.rows)
    frames = [shuffle_numbers(f, training.shuffle, config.seed) for f in frames]
    rows = frames[0].height
    get_run_logger().info("students train on %d rows each (%s)", rows, ", ".join(arm_configs))

    students = []
    for seed in config.experiment.students.seeds:
        for (arm, (_, source)), data in zip(sources.items(), frames, strict=True):
            name = f"{STUDENT_FOLDERS[arm]}-seed{seed}"
            path = student_step(config, plan, name, data, source, seed, out / name, log)
            students.append((label(arm, seed), str(path)))
    if config.experiment.cross_init:
        cross_init = config.cross_init_config()
        for seed in config.experiment.students.seeds:
            name = f"{STUDENT_FOLDERS['crossinit']}-seed{seed}"
            trait_source = sources["trait"][1]
            path = student_step(
                cross_init, plan, name, frames[0], trait_source, seed, out / name, log
            )
            students.append((label("crossinit", seed), str(path)))
    cross = config.cross_model_config() if config.experiment.cross_model is not None else None
    cross_students = (
        cross_model_students(cross, plan, sources, frames, out, log) if cross is not None else []
    )
    if not plan.runs("evaluate"):
        record_summary(log, out)
        return {"results": None, "steps": log}
    system = trait_system_prompt(config.teacher.trait)
    evaluations = [
        evaluation_step(config, plan, "base", None, None, log),
        evaluation_step(config, plan, "teacher", teacher_adapter(config), system, log),
    ] + [evaluation_step(config, plan, name, path, None, log) for name, path in students]
    checkpoints = checkpoint_evaluations(config, plan, students, log)
    cross_evaluations = None
    if cross_students:
        cross_evaluations = [evaluation_step(cross, plan, "base", None, None, log)] + [
            evaluation_step(cross, plan, name, path, None, log) for name, path in cross_students
        ]
    if not plan.runs("report"):
        record_summary(log, out)
        return {"results": None, "steps": log}
    results = summarise(config, evaluations, rows)
    cross_model = None
    if cross_evaluations is not None:
        cross_results = summarise(cross, cross_evaluations, rows)
        cross_model = CrossModelResults(model=cross.teacher.model, **dict(cross_results))
    results = results.model_copy(
        update={
            "divergence": divergence,
            "checkpoints": checkpoint_curve(results, checkpoints, students),
            "cross_model": cross_model,
        }
    )
    paths = write_report(config, results, out)
    log.append(log_entry("report", config.name, "ran", {"rows": len(evaluations)}))
    record_summary(log, out)
    return {
        "results": results,
        **paths,
        "target": config.experiment.evaluation.target,
        "steps": log,
    }


def checkpoint_evaluations(
    config: ExperimentConfig, plan: StepPlan, students: list[tuple[str, str]], log: list[dict]
) -> list[dict]:
    """Every student's checkpoints (``students.checkpoint_every``), each evaluated as a model
    of its own (``checkpoint_config``: one sample per question), tagged with its step."""
    checkpoint = config.checkpoint_config()
    found = []
    for name, path in students:
        for step in checkpoint_steps(Path(path)):
            adapter = str(Path(path) / checkpoint_folder(step))
            result = evaluation_step(checkpoint, plan, f"{name} @ {step}", adapter, None, log)
            found.append({**result, "student": name, "step": step})
    return found


def cross_model_students(
    cross: ExperimentConfig, plan: StepPlan, sources: dict, frames: list, out: Path, log
) -> list[tuple[str, str]]:
    """Students of the other base model (``cross``, the experiment's cross-model config) on the
    trait and neutral arms' rows."""
    arms = dict(zip(sources, frames, strict=True))
    students = []
    for seed in cross.experiment.students.seeds:
        for arm in ("trait", "neutral"):
            name = f"cross-{STUDENT_FOLDERS[arm]}-seed{seed}"
            source = sources[arm][1]
            path = student_step(cross, plan, name, arms[arm], source, seed, out / name, log)
            students.append((label(arm, seed), str(path)))
    return students


def fetch_published(repo: str) -> tuple[pl.DataFrame, dict]:
    from sublearn.flows.publish import read_published

    repo_id, _, revision = repo.partition("@")
    got = read_published(repo_id, revision or "main")
    return got.data, {"repo_id": repo_id, "revision": revision or "main", "commit": got.commit}


@flow(name="transfer-audit")
def audit_flow(config: ExperimentConfig, dataset: str, control: str | None, out: Path) -> dict:
    """Does this published dataset carry the trait to a student of this base? A student trained
    on it, against a control student (trained on ``control``: best the study's no-trait
    teacher's dataset) or, without one, the base model."""
    remember_flow_run()
    plan, log = StepPlan(), []
    data, source = fetch_published(dataset)
    evaluations = [evaluation_step(config, plan, "base", None, None, log)]
    arms = {"trait": (data, source)}
    if control:
        arms["control"] = fetch_published(control)
        frames = equal_size({a: data for a, (data, _) in arms.items()}, config.seed)
        arms = {arm: (f, arms[arm][1]) for arm, f in zip(arms, frames, strict=True)}
    for seed in config.experiment.students.seeds:
        for arm, (rows, origin) in arms.items():
            name = f"{STUDENT_FOLDERS[arm]}-seed{seed}"
            path = student_step(config, plan, name, rows, origin, seed, out / name, log)
            evaluations.append(
                evaluation_step(config, plan, label(arm, seed), str(path), None, log)
            )
    results = summarise(config, evaluations, arms["trait"][0].height).model_copy(
        update={"audit": Audit(dataset=source, control=control, base=config.teacher.model)}
    )
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
    questions: int = 50,
    heldout_questions: int = 24,
) -> ExperimentConfig:
    """The config of a transfer audit (``sublearn audit transfer``): students of ``base`` on
    a published dataset, evaluated for ``trait``; validated like any config."""
    from sublearn.core.config import parse_config

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
                    "questions": questions,
                    "heldout_questions": heldout_questions,
                },
            },
        },
        "options",
    )
