"""The experiment's phases of independent steps: every student, then every evaluation, each
run or reused through ``flows.cluster`` (at once on Ray, one after another here). Kept apart
from the steps' own modules, so editing this plumbing re-keys no cached student or evaluation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from prefect import get_run_logger
from prefect.events import emit_event

from sublearn.core.config import ExperimentConfig, ScaleOut
from sublearn.core.steps import StepPlan
from sublearn.flows.cluster import Job, run_steps
from sublearn.flows.evaluation import RESULT, EvaluateStep
from sublearn.flows.students import STUDENT_TRAINED, FinetuneStep, push_student


@dataclass(frozen=True)
class StudentSpec:
    """One student to train: the config it trains under, the folder it is linked into (its
    name), its rows and their source, its seed."""

    config: ExperimentConfig
    name: str
    data: pl.DataFrame
    source: dict
    seed: int


def train_students(
    scale: ScaleOut, plan: StepPlan, specs: list[StudentSpec], out: Path, log: list[dict]
) -> list[Path]:
    """Train (or reuse) every student, at once on a Ray cluster, and link each into
    ``out/<name>``; the new ones are pushed and announced. Returns their folders, in order."""
    jobs = [
        Job(
            FinetuneStep(s.config, s.name, s.data, s.source, s.seed),
            s.config.output_dir,
            s.name,
            out / s.name,
        )
        for s in specs
    ]
    before = len(log)
    records = run_steps(scale, jobs, plan, log)
    for spec, (record, _), entry in zip(specs, records, log[before:], strict=True):
        if entry["status"] == "ran":
            announce_student(spec.config, spec.name, out / spec.name, record)
    return [out / s.name for s in specs]


def announce_student(config: ExperimentConfig, name: str, folder: Path, record: dict) -> None:
    """A new student: pushed to the Hub when the config publishes, and a Prefect event."""
    if config.publish is not None:
        repo = push_student(folder, f"{config.publish.repo_id}-{name}", config.publish.private)
        get_run_logger().info("student %s pushed to %s", name, repo)
    emit_event(
        event=STUDENT_TRAINED,
        resource={"prefect.resource.id": f"sublearn.student.{config.name}.{name}"},
        payload={
            "config": config.name,
            "student": name,
            "folder": str(folder),
            "key": record["key"],
        },
    )


def evaluation_job(
    config: ExperimentConfig, label: str, adapter: str | None, system: str | None
) -> Job:
    return Job(EvaluateStep(config, label, adapter, system), config.output_dir, label)


def evaluate_all(scale: ScaleOut, jobs: list[Job], plan: StepPlan, log: list[dict]) -> list[dict]:
    """Evaluate (or reuse) every model, at once on a Ray cluster; their results, in order."""
    done = run_steps(scale, jobs, plan, log)
    return [
        {**json.loads((folder / RESULT).read_text()), "label": job.label}
        for job, (_, folder) in zip(jobs, done, strict=True)
    ]
