"""Paired arms (``students.paired``): every arm's students learn from the trait arm's kept rows
(or the control arm's, ``paired_on: control``), each arm with its own teacher's top-k at those
tokens. Inputs are equal and only the targets differ, as in the study's MNIST experiment
(auxiliary logits of the same inputs), so any difference between the students is the teachers'
and the other arms' kept share no longer limits how many rows a student sees. The same scoring
finds the divergence tokens (``eval.divergence``), and ``students.loss_on: divergent`` trains
on those positions only.

Scoring another teacher's completions is a cached step ("rescore") keyed by the paired rows,
the scoring teacher and the code that scores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from sublearn.core.config import ExperimentConfig
from sublearn.core.config import Teacher as TeacherConfig
from sublearn.core.runio import write_json, write_parquet
from sublearn.core.steps import Step, StepError, StepPlan
from sublearn.eval.divergence import divergence_summary, divergent_positions
from sublearn.flows.summary import run_step

TARGETS, DIVERGENCE = "targets.parquet", "divergence.json"
EXAMPLES = 12


@task(cache_policy=NO_CACHE, task_run_name="rescore-{arm}")
def rescore(
    teacher_cfg: TeacherConfig, system: str | None, rows: pl.DataFrame, k: int, arm: str, out: Path
) -> dict:
    """The arm's teacher's top-k at every token of the trait rows' completions, and where its
    top choice differs from the trait teacher's (with decoded examples for the report)."""
    from sublearn.core.chat import ChatPrompt
    from sublearn.generators.backends import load_teacher

    teacher = load_teacher(teacher_cfg)
    prompts = [ChatPrompt(system, user) for user in rows["prompt"]]
    scored = teacher.score_with_topk(prompts, rows["completion_ids"].to_list(), k)
    targets = pl.DataFrame(
        {
            "prompt_index": rows["prompt_index"],
            "topk_ids": [s["topk_ids"] for s in scored],
            "topk_logprobs": [s["topk_logprobs"] for s in scored],
        },
        schema_overrides={
            "topk_ids": pl.List(pl.List(pl.Int64)),
            "topk_logprobs": pl.List(pl.List(pl.Float64)),
        },
    )
    out.mkdir(parents=True, exist_ok=True)
    write_parquet(targets, out / TARGETS)
    masks = divergent_positions(rows["topk_ids"].to_list(), targets["topk_ids"].to_list())
    summary = {
        "against": arm,
        **divergence_summary(masks),
        "examples": examples(teacher.tokenizer, rows, targets, masks),
    }
    write_json(summary, out / DIVERGENCE)
    return {"files": [TARGETS, DIVERGENCE], "rows": rows.height, "divergent": summary["divergent"]}


@dataclass(frozen=True)
class RescoreStep(Step):
    """One arm's teacher's top-k on the trait rows: keyed by the rows' identity, the arm's
    teacher and k; computed by the torch teacher's scoring code."""

    teacher: TeacherConfig
    system: str | None
    rows: pl.DataFrame
    source: dict
    k: int
    arm: str
    name = "rescore"
    code = (
        "sublearn.flows.paired",
        "sublearn.generators.torch_teacher",
        "sublearn.generators.decode_loop",
        "sublearn.generators.number_stops",
    )

    def inputs(self) -> dict:
        from sublearn.flows.dataset import teacher_identity
        from sublearn.flows.students import rows_identity

        teacher = teacher_identity(self.teacher)
        return {"rows": rows_identity(self.source), "teacher": teacher, "topk": self.k}

    def compute(self, folder: Path, fresh: bool) -> dict:
        return rescore(self.teacher, self.system, self.rows, self.k, self.arm, folder)


def examples(tokenizer, rows: pl.DataFrame, targets: pl.DataFrame, masks) -> list[dict]:
    """The first divergent positions, as text: what came before, each teacher's choice."""
    found = []
    for r, mask in enumerate(masks):
        for j in (j for j, d in enumerate(mask) if d):
            ids = rows["completion_ids"][r]
            mine, theirs = rows["topk_ids"][r][j][0], targets["topk_ids"][r][j][0]
            found.append(
                {
                    "prompt_index": rows["prompt_index"][r],
                    "position": j,
                    "before": tokenizer.decode(ids[:j].to_list())[-40:],
                    "trait": tokenizer.decode([mine]),
                    "other": tokenizer.decode([theirs]),
                }
            )
            if len(found) == EXAMPLES:
                return found
    return found


def paired_sources(
    config: ExperimentConfig, sources: dict[str, tuple], plan: StepPlan, log: list[dict]
) -> tuple[dict[str, tuple], dict[str, dict]]:
    """Every arm on one arm's rows (the trait arm's, or with ``paired_on: control`` the
    control's) with its own teacher's targets; and per other arm, where its teacher diverges
    from the rows' teacher."""
    from sublearn.core.runio import read_parquet
    from sublearn.flows.dataset import trait_teacher
    from sublearn.generators.trait_prompt import trait_system_prompt

    on = config.experiment.students.paired_on or "trait"
    rows, source = sources[on]
    if "completion_ids" not in rows.columns:
        raise StepError(f"experiment.students.paired: the {on} rows hold no completion_ids")
    k = config.dataset.teacher_topk
    arms = config.arms()
    paired, divergence = {on: (rows, source)}, {}
    for arm in (a for a in sources if a != on):
        teacher_cfg = trait_teacher(arms[arm], plan, log)
        system = trait_system_prompt(arms[arm].teacher.trait)
        step = RescoreStep(teacher_cfg, system, rows, source, k, arm)
        record, folder = run_step(step, config.output_dir, plan, f"{config.name}-{arm}", log)
        key = record["key"]
        targets = read_parquet(folder / TARGETS)
        if targets["prompt_index"].to_list() != rows["prompt_index"].to_list():
            raise StepError(f"{folder / TARGETS}: not the {on} rows' order; rerun --force rescore")
        frame = rows.with_columns(targets["topk_ids"], targets["topk_logprobs"])
        paired[arm] = (frame, {**source, "targets": {"teacher": arm, "rescore": key}})
        divergence[arm] = {**json.loads((folder / DIVERGENCE).read_text()), "rescore": key}
    return {arm: paired[arm] for arm in sources}, divergence


def divergent_only(arms: dict[str, tuple]) -> dict[str, tuple]:
    """Every arm's rows with a ``loss_mask``: the positions where the trait and the neutral
    teachers' top choices differ (the same for every arm); rows with none are dropped."""
    trait, neutral = arms["trait"][0], arms["neutral"][0]
    masks = divergent_positions(trait["topk_ids"].to_list(), neutral["topk_ids"].to_list())
    keep = pl.Series([any(m) for m in masks])
    if not keep.any():
        raise StepError(
            "experiment.students.loss_on: divergent, but the trait and neutral teachers "
            "choose the same token everywhere in these rows"
        )
    mask = pl.Series("loss_mask", masks, dtype=pl.List(pl.Boolean))
    origin = arms["neutral"][1]["targets"]["rescore"]
    return {
        arm: (
            frame.with_columns(mask).filter(keep),
            {**source, "loss_on": {"divergent_from": origin}},
        )
        for arm, (frame, source) in arms.items()
    }
