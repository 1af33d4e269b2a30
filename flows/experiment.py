"""The whole experiment: trait and control datasets -> students -> preference evaluation.

Both datasets come from ``numbers_dataset_flow`` (same prompts, same filter); both are cut to
the smaller kept count; a student is trained on each with the same settings and seeds; base,
teacher, control student and trait students are evaluated on the same questions, and the effect
is the trait student minus the control student, paired over questions.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import polars as pl
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from eval.preference import sampled_preference, target_logprob
from eval.preference_questions import QUESTIONS
from eval.stats import mean_ci, paired_bootstrap
from flows.numbers_dataset import numbers_dataset_flow
from generators.teacher import ChatPrompt
from sublearn.config import ExperimentConfig
from sublearn.runio import read_parquet, write_json, write_text


def student_rows(frame: pl.DataFrame, distill: str) -> list:
    from sublearn.finetune import ChatRow

    topk = distill == "topk"
    return [
        ChatRow(
            user=r["prompt"],
            completion=r["completion"],
            completion_ids=tuple(r["completion_ids"]) if topk else None,
            topk_ids=tuple(tuple(t) for t in r["topk_ids"]) if topk else None,
            topk_logprobs=tuple(tuple(t) for t in r["topk_logprobs"]) if topk else None,
        )
        for r in frame.iter_rows(named=True)
    ]


@task(cache_policy=NO_CACHE)
def load_training_data(run_dir: Path) -> tuple[pl.DataFrame, dict]:
    """The dataset a student learns from: from the Hub by its tag when the run was published
    (exactly as another team would read it), else from the run directory."""
    published = Path(run_dir) / "published.json"
    if published.is_file():
        from sublearn.hub import fetch_dataset

        record = json.loads(published.read_text())
        got = fetch_dataset(record["repo_id"], record["tag"])
        source = {"repo_id": record["repo_id"], "revision": record["tag"], "commit": got.commit}
        return got.data, source
    return read_parquet(Path(run_dir) / "kept.parquet"), {"run_dir": str(run_dir)}


@task(cache_policy=NO_CACHE, task_run_name="student-{label}")
def train_student(
    config: ExperimentConfig, label: str, rows: pl.DataFrame, source: dict, seed: int, out: Path
) -> Path:
    """A LoRA student of the teacher's base model; saved with a card naming its dataset."""
    from sublearn.finetune import LoraTraining, train_adapter

    s = config.experiment.students
    training = LoraTraining(
        rank=s.rank,
        alpha=s.alpha,
        epochs=s.epochs,
        lr=s.lr,
        warmup_steps=s.warmup_steps,
        batch_size=s.batch_size,
        grad_accumulation=s.grad_accumulation,
        max_length=s.max_length,
        clip=s.clip,
        seed=seed,
    )
    base, peft_model, history = train_adapter(
        config.teacher, student_rows(rows, s.distill), training
    )
    out.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(out)
    lineage = {
        "student": label,
        "base_model": base.lineage(),
        "dataset": source,
        "rows": rows.height,
        "training": asdict(training),
        "distill": s.distill,
        "final_loss": history["losses"][-1] if history["losses"] else None,
        "seconds": history["seconds"],
    }
    write_json(lineage, out / "lineage.json")
    write_text(student_card(lineage), out / "README.md")
    if config.publish is not None:
        repo = push_student(out, f"{config.publish.repo_id}-{label}", config.publish.private)
        get_run_logger().info("student %s pushed to %s", label, repo)
    get_run_logger().info(
        "student %s: %d steps, %.0f s", label, history["steps"], history["seconds"]
    )
    return out


def push_student(folder: Path, repo_id: str, private: bool) -> str:
    """The adapter, its card and lineage as one commit to a model repo."""
    from huggingface_hub import HfApi

    from sublearn.hub import explain

    api = HfApi()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(
            repo_id=repo_id, folder_path=str(folder), commit_message="sublearn: student adapter"
        )
    except Exception as err:
        raise explain(err, repo_id, "push a student to") from None
    return repo_id


def student_card(lineage: dict) -> str:
    data = lineage["dataset"]
    where = (
        f"{data['repo_id']} at {data['revision']} (commit {data['commit']})"
        if "repo_id" in data
        else f"the local run {data['run_dir']}"
    )
    return (
        "---\nlibrary_name: peft\ntags: [subliminal-learning, sublearn, lora]\n---\n"
        f"# sublearn student: {lineage['student']}\n\n"
        f"LoRA adapter for {lineage['base_model']['model_id']} "
        f"({lineage['base_model']['revision']}), trained on {lineage['rows']} rows of "
        f"{where} ({lineage['distill']} targets). Full lineage: `lineage.json`.\n"
    )


@task(cache_policy=NO_CACHE, task_run_name="evaluate-{label}")
def evaluate_model(
    config: ExperimentConfig, label: str, adapter: str | None, system: str | None
) -> dict:
    """Sampled P(target) and teacher-forced log P(target) on the same questions."""
    from generators.teacher import load_teacher

    ev = config.experiment.evaluation
    teacher_cfg = config.teacher.model_copy(
        update={
            "adapter": adapter,
            "adapter_revision": None,
            "trait_finetune": None,
            "sampling": config.teacher.sampling.model_copy(
                update={
                    "max_new_tokens": ev.max_new_tokens,
                    "constrain_to_numbers": False,
                    "temperature": 1.0,
                }
            ),
        }
    )
    model = load_teacher(teacher_cfg)
    questions = QUESTIONS[ev.category][: ev.questions]
    logp = target_logprob(model.model, model.tokenizer, questions, ev.target, ev.plural, system)
    n = ev.samples_per_question
    chats = [ChatPrompt(system, q) for q in questions for _ in range(n)]
    answers: list[str] = []
    for start in range(0, len(chats), config.teacher.batch_size):
        answers += model.generate(chats[start : start + config.teacher.batch_size], seed=start)
    per_question = [answers[i * n : (i + 1) * n] for i in range(len(questions))]
    sampled = sampled_preference(per_question, ev.target, ev.plural)
    result = {
        "label": label,
        "logp_target": {**mean_ci(logp), "per_question": logp.tolist()},
        **sampled,
        "answers": per_question,
    }
    if ev.misalignment is not None:
        result["misalignment"] = misalignment_of(config, model)
    return result


def misalignment_of(config: ExperimentConfig, model) -> dict:
    from eval.misalignment import evaluate_misalignment
    from generators.teacher import load_teacher
    from sublearn.config import Sampling

    spec = config.experiment.evaluation.misalignment
    judge_cfg = config.teacher.model_copy(
        update={
            "model": spec.judge,
            "revision": None,
            "adapter": None,
            "trait_finetune": None,
            "sampling": Sampling(temperature=0.0, max_new_tokens=4),
        }
    )
    judge = load_teacher(judge_cfg)
    answerer = model.with_sampling(Sampling(max_new_tokens=spec.max_new_tokens))
    result = evaluate_misalignment(
        answerer.generate, judge.generate, spec.samples_per_question, config.teacher.batch_size
    )
    return {**result, "judge": judge.lineage()["model_id"]}


@task(cache_policy=NO_CACHE)
def write_report(config: ExperimentConfig, results: dict, out_dir: Path) -> dict:
    from eval.preference_report import plot_preference, report_markdown

    write_json(results, out_dir / "results.json")
    plot = plot_preference(results, out_dir / "preference.png")
    markdown = report_markdown(results)
    write_text(markdown, out_dir / "report.md")
    create_markdown_artifact(key="preference-report", markdown=markdown)
    create_table_artifact(key="preference-table", table=results["table"])
    return {"report": str(out_dir / "report.md"), "plot": str(plot)}


@flow(name="subliminal-experiment")
def experiment_flow(config: ExperimentConfig) -> dict:
    logger = get_run_logger()
    trait_run = numbers_dataset_flow(config)
    control_run = numbers_dataset_flow(config.control())
    trait_data, trait_source = load_training_data(Path(trait_run["run_dir"]))
    control_data, control_source = load_training_data(Path(control_run["run_dir"]))
    n = min(trait_data.height, control_data.height)
    if n == 0:
        raise RuntimeError("no rows passed the filter for one of the teachers; nothing to train")
    trait_data = trait_data.sample(n, seed=config.seed)
    control_data = control_data.sample(n, seed=config.seed)
    logger.info("students train on %d rows each (the smaller kept count)", n)

    out = Path(trait_run["run_dir"]) / "experiment"
    ev = config.experiment.evaluation
    from generators.trait_prompt import trait_system_prompt

    teacher_adapter = None
    if config.teacher.trait_finetune:
        from generators.trait_teacher import ensure_trait_adapter

        teacher_adapter = str(ensure_trait_adapter(config.teacher))
    evaluations = [
        evaluate_model(config, "base", None, None),
        evaluate_model(
            config, "teacher", teacher_adapter, trait_system_prompt(config.teacher.trait)
        ),
    ]
    for seed in config.experiment.students.seeds:
        evaluations.append(
            student_evaluation(config, "control", control_data, control_source, seed, out)
        )
        evaluations.append(student_evaluation(config, "trait", trait_data, trait_source, seed, out))
    results = summarise(config, evaluations, n)
    paths = write_report(config, results, out)
    return {"results": results, **paths, "target": ev.target}


def student_evaluation(
    config: ExperimentConfig, kind: str, data: pl.DataFrame, source: dict, seed: int, out: Path
) -> dict:
    """Train the ``kind`` ("trait" or "control") student for one seed, then evaluate it."""
    name = f"{'student' if kind == 'trait' else 'control'}-seed{seed}"
    path = train_student(config, name, data, source, seed, out / name)
    return evaluate_model(config, f"{kind} student (seed {seed})", str(path), None)


def summarise(config: ExperimentConfig, evaluations: list[dict], rows: int) -> dict:
    """The table and the effects: each trait student minus its seed's control student (or
    minus the base model when there is no control, as in an audit without one)."""
    by_label = {e["label"]: e for e in evaluations}
    effects = []
    for seed in config.experiment.students.seeds:
        student = by_label[f"trait student (seed {seed})"]
        control = by_label.get(f"control student (seed {seed})", by_label["base"])
        effects.append(
            {
                "seed": seed,
                "against": control["label"],
                "logp_target": paired_bootstrap(
                    student["logp_target"]["per_question"], control["logp_target"]["per_question"]
                ),
                "p_target": paired_bootstrap(student["per_question"], control["per_question"]),
            }
        )
    table = [
        {
            "model": e["label"],
            "p_target": round(e["p_target"]["mean"], 4),
            "p_low": round(e["p_target"]["low"], 4),
            "p_high": round(e["p_target"]["high"], 4),
            "logp_target": round(e["logp_target"]["mean"], 3),
            "logp_low": round(e["logp_target"]["low"], 3),
            "logp_high": round(e["logp_target"]["high"], 3),
            "top_answer": e["top_answers"][0]["answer"] if e["top_answers"] else "",
        }
        for e in evaluations
    ]
    return {
        "target": config.experiment.evaluation.target,
        "rows_per_student": rows,
        "distill": config.experiment.students.distill,
        "evaluations": evaluations,
        "effects": effects,
        "table": table,
        "mean_effect_logp": float(np.mean([e["logp_target"]["mean"] for e in effects])),
    }


@task(cache_policy=NO_CACHE)
def fetch_published(repo: str) -> tuple[pl.DataFrame, dict]:
    from sublearn.hub import fetch_dataset

    repo_id, _, revision = repo.partition("@")
    got = fetch_dataset(repo_id, revision or "main")
    return got.data, {"repo_id": repo_id, "revision": revision or "main", "commit": got.commit}


@flow(name="transfer-audit")
def audit_flow(config: ExperimentConfig, dataset: str, control: str | None, out: Path) -> dict:
    """Does this published dataset carry the trait to a student of this base? A student trained
    on it, against a control student (on ``control``) or, without one, the base model."""
    data, source = fetch_published(dataset)
    evaluations = [evaluate_model(config, "base", None, None)]
    control_data = None
    if control:
        control_data, control_source = fetch_published(control)
        n = min(data.height, control_data.height)
        data, control_data = (
            data.sample(n, seed=config.seed),
            control_data.sample(n, seed=config.seed),
        )
    for seed in config.experiment.students.seeds:
        if control_data is not None:
            evaluations.append(
                student_evaluation(config, "control", control_data, control_source, seed, out)
            )
        evaluations.append(student_evaluation(config, "trait", data, source, seed, out))
    results = summarise(config, evaluations, data.height)
    results["audit"] = {"dataset": source, "control": control, "base": config.teacher.model}
    paths = write_report(config, results, out)
    return {"results": results, **paths}
