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
from sublearn.flows.cluster import Job, cluster, train_trait_teachers
from sublearn.flows.dataset import dataset_flow, with_trait_weights
from sublearn.flows.experiment_report import checkpoint_curve, summarise, write_report
from sublearn.flows.paired import divergent_only, paired_sources
from sublearn.flows.phases import StudentSpec, evaluate_all, evaluation_job, train_students
from sublearn.flows.students import (
    checkpoint_folder,
    checkpoint_steps,
    shuffle_numbers,
    training_source,
)
from sublearn.flows.summary import log_entry, record_summary

CROSS_MODEL_ARMS = ("trait", "neutral")  # the cross-model students' arms
VOCAB_MAP = "sublearn.core.vocab_map"  # carries top-k targets into another vocabulary
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


def teacher_evaluation(config: ExperimentConfig, system: str | None) -> Job:
    """The trait teacher's evaluation: with its system prompt, and its trait weights when
    fine-tuned (the adapter on the base, or the fully fine-tuned model in the base's place)."""
    teacher = config.teacher
    if teacher.trait_finetune:
        from sublearn.generators.trait_teacher import ensure_trait_adapter

        teacher = with_trait_weights(teacher, ensure_trait_adapter(teacher))
    evaluated = config.model_copy(update={"teacher": teacher})
    return evaluation_job(evaluated, "teacher", teacher.adapter, system)


@flow(name="subliminal-experiment")
def experiment_flow(config: ExperimentConfig, plan: StepPlan | None = None) -> dict:
    remember_flow_run()
    with cluster(config.scale_out):
        return run_experiment(config, plan or StepPlan())


def run_experiment(config: ExperimentConfig, plan: StepPlan) -> dict:
    from sublearn.generators.trait_prompt import trait_system_prompt

    log: list[dict] = []
    if not plan.upstream_only("publish"):
        log += [
            log_entry("trait teacher", t["target"], "ran", t) for t in train_trait_teachers(config)
        ]
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

    seeds = config.experiment.students.seeds
    specs = [  # (the student, its label in the evaluations)
        (
            StudentSpec(config, f"{STUDENT_FOLDERS[arm]}-seed{seed}", data, source, seed),
            label(arm, seed),
        )
        for seed in seeds
        for (arm, (_, source)), data in zip(sources.items(), frames, strict=True)
    ]
    if config.experiment.cross_init:
        cross_init, trait_source = config.cross_init_config(), sources["trait"][1]
        specs += [
            (
                StudentSpec(
                    cross_init,
                    f"{STUDENT_FOLDERS['crossinit']}-seed{seed}",
                    frames[0],
                    trait_source,
                    seed,
                ),
                label("crossinit", seed),
            )
            for seed in seeds
        ]
    cross = config.cross_model_config() if config.experiment.cross_model is not None else None
    cross_specs, translation = [], None
    if cross is not None:
        learned = {
            arm: frame
            for arm, frame in zip(sources, frames, strict=True)
            if arm in CROSS_MODEL_ARMS
        }
        cross_frames, translation = cross_model_frames(config, cross, learned)
        cross_specs = cross_model_specs(cross, sources, cross_frames, translation is not None)
    everyone = specs + cross_specs
    paths = train_students(config.scale_out, plan, [spec for spec, _ in everyone], out, log)
    trained = [(name, str(path)) for (_, name), path in zip(everyone, paths, strict=True)]
    students, cross_students = trained[: len(specs)], trained[len(specs) :]
    if not plan.runs("evaluate"):
        record_summary(log, out)
        return {"results": None, "steps": log}
    system = trait_system_prompt(config.teacher.trait)
    jobs = [
        evaluation_job(config, "base", None, None),
        teacher_evaluation(config, system),
    ] + [evaluation_job(config, name, path, None) for name, path in students]
    checkpoints = checkpoint_jobs(config, students)
    jobs += [job for job, _ in checkpoints]
    if cross is not None:
        jobs += [evaluation_job(cross, "base", None, None)] + [
            evaluation_job(cross, name, path, None) for name, path in cross_students
        ]
    evaluated = evaluate_all(config.scale_out, jobs, plan, log)
    main, ends = 2 + len(students), 2 + len(students) + len(checkpoints)
    evaluations = evaluated[:main]
    checkpoint_results = [
        {**result, **where}
        for result, (_, where) in zip(evaluated[main:ends], checkpoints, strict=True)
    ]
    cross_evaluations = evaluated[ends:] if cross is not None else None
    if not plan.runs("report"):
        record_summary(log, out)
        return {"results": None, "steps": log}
    results = summarise(config, evaluations, rows)
    cross_model = None
    if cross_evaluations is not None:
        cross_rows = min(frame.height for frame in cross_frames.values())
        cross_results = summarise(cross, cross_evaluations, cross_rows)
        cross_model = CrossModelResults(
            model=cross.teacher.model, translation=translation, **dict(cross_results)
        )
    results = results.model_copy(
        update={
            "divergence": divergence,
            "checkpoints": checkpoint_curve(results, checkpoint_results, students),
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


def checkpoint_jobs(config: ExperimentConfig, students: list[tuple[str, str]]) -> list:
    """Every student's checkpoints (``students.checkpoint_every``), each evaluated as a model
    of its own (``checkpoint_config``: one sample per question), tagged with its step."""
    checkpoint = config.checkpoint_config()
    return [
        (
            evaluation_job(
                checkpoint, f"{name} @ {step}", str(Path(path) / checkpoint_folder(step)), None
            ),
            {"student": name, "step": step},
        )
        for name, path in students
        for step in checkpoint_steps(Path(path))
    ]


def cross_model_frames(
    config: ExperimentConfig, cross: ExperimentConfig, arms: dict[str, pl.DataFrame]
) -> tuple[dict[str, pl.DataFrame], dict | None]:
    """Each arm's rows as the cross-model students learn them: as they are for sampled
    tokens; for top-k, in the other model's token ids (``sublearn.core.vocab_map``), with
    what the carrying dropped, arm by arm."""
    if cross.experiment.students.distill != "topk":
        return arms, None
    from sublearn.core.models import load_tokenizer
    from sublearn.core.vocab_map import frame_token_ids, token_map, translate_topk

    source = load_tokenizer(config.teacher.model, config.teacher.revision)
    target = load_tokenizer(cross.teacher.model, cross.teacher.revision)
    mapping = token_map(source, target, set().union(*map(frame_token_ids, arms.values())))
    carried = {arm: translate_topk(frame, mapping) for arm, frame in arms.items()}
    empty = [arm for arm, (frame, _) in carried.items() if frame.height == 0]
    if empty:
        raise StepError(
            f"cross_model.distill: topk: no row of the {empty[0]} arm is made of tokens "
            f"{cross.teacher.model} has one for one; use distill sampled"
        )
    stats = {arm: s for arm, (_, s) in carried.items()}
    get_run_logger().info("top-k targets carried into %s: %s", cross.teacher.model, stats)
    return {arm: frame for arm, (frame, _) in carried.items()}, stats


def cross_model_specs(
    cross: ExperimentConfig, sources: dict, arms: dict[str, pl.DataFrame], carried: bool
) -> list[tuple[StudentSpec, str]]:
    """Students of the other base model (``cross``, the experiment's cross-model config) on the
    trait and neutral arms' rows, with their labels. Rows ``carried`` into its vocabulary name
    the carrying's code in their source, so the students' key and lineage follow it."""
    tag = {}
    if carried:
        from sublearn.core.steps import code_digest

        tag = {"carried": {"into": cross.teacher.model, "code": code_digest([VOCAB_MAP])}}
    return [
        (
            StudentSpec(
                cross,
                f"cross-{STUDENT_FOLDERS[arm]}-seed{seed}",
                arms[arm],
                {**sources[arm][1], **tag},
                seed,
            ),
            label(arm, seed),
        )
        for seed in cross.experiment.students.seeds
        for arm in CROSS_MODEL_ARMS
    ]


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
    with cluster(config.scale_out):
        return run_audit(config, dataset, control, out)


def run_audit(config: ExperimentConfig, dataset: str, control: str | None, out: Path) -> dict:
    plan, log = StepPlan(), []
    data, source = fetch_published(dataset)
    arms = {"trait": (data, source)}
    if control:
        arms["control"] = fetch_published(control)
        frames = equal_size({a: data for a, (data, _) in arms.items()}, config.seed)
        arms = {arm: (f, arms[arm][1]) for arm, f in zip(arms, frames, strict=True)}
    seeds = config.experiment.students.seeds
    specs = [
        StudentSpec(config, f"{STUDENT_FOLDERS[arm]}-seed{seed}", rows, origin, seed)
        for seed in seeds
        for arm, (rows, origin) in arms.items()
    ]
    paths = train_students(config.scale_out, plan, specs, out, log)
    names = [label(arm, seed) for seed in seeds for arm in arms]
    jobs = [evaluation_job(config, "base", None, None)] + [
        evaluation_job(config, name, str(path), None)
        for name, path in zip(names, paths, strict=True)
    ]
    evaluations = evaluate_all(config.scale_out, jobs, plan, log)
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
