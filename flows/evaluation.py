"""Evaluation: sampled P(target) and teacher-forced log P of the target and a panel of other
answers for each model, on the main and the held-out questions. The effects and the report are
in flows/experiment_report.py, outside this step's code key, so editing them re-evaluates nothing.

Each model's evaluation is a cached step keyed by the model (base weights, adapter digest,
system prompt) and the evaluation settings, so rerunning only the report costs nothing and a new
student is evaluated without re-evaluating the base model and the teacher.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from sublearn.core.chat import ChatPrompt
from sublearn.core.config import ExperimentConfig
from sublearn.core.model_source import file_sha256
from sublearn.core.runio import write_json
from sublearn.core.steps import Step
from sublearn.eval.preference import panel_logprob, sampled_preference
from sublearn.eval.preference_questions import HELDOUT_QUESTIONS, PANELS, QUESTIONS
from sublearn.eval.stats import mean_ci
from sublearn.flows.progress import StepProgress

RESULT = "result.json"


@task(cache_policy=NO_CACHE, task_run_name="evaluate-{label}")
def evaluate_model(
    config: ExperimentConfig, label: str, adapter: str | None, system: str | None
) -> dict:
    """Sampled P(target) on the main questions; teacher-forced log P of every panel answer on
    the main and the held-out questions."""
    from sublearn.generators.backends import load_teacher

    ev = config.experiment.evaluation
    teacher_cfg = config.teacher.model_copy(
        update={
            "adapter": adapter,
            "adapter_revision": None,
            "trait_finetune": None,
            "sampling": config.teacher.sampling.model_copy(
                update={
                    "max_new_tokens": ev.max_new_tokens,
                    "temperature": 1.0,
                }
            ),
        }
    )
    model = load_teacher(teacher_cfg)
    questions = QUESTIONS[ev.category][: ev.questions]
    heldout = HELDOUT_QUESTIONS[ev.category][: ev.heldout_questions]
    panel = evaluation_panel(config)
    plurals = {ev.target: ev.plural} if ev.plural else None
    scored = panel_logprob(
        model.model, model.tokenizer, questions + heldout, panel, plurals, system
    )
    logp = scored[: len(questions), 0]
    n = ev.samples_per_question
    chats = [ChatPrompt(system, q) for q in questions for _ in range(n)]
    answers: list[str] = []
    batch = config.teacher.batch_size
    with StepProgress(f"evaluate {label}", len(chats)) as progress:
        for start in range(0, len(chats), batch):
            answers += model.generate(chats[start : start + batch], seed=start)
            progress.update(len(answers))
    per_question = [answers[i * n : (i + 1) * n] for i in range(len(questions))]
    sampled = sampled_preference(per_question, ev.target, ev.plural)
    result = {
        "label": label,
        "logp_target": {**mean_ci(logp), "per_question": logp.tolist()},
        "panel": panel,
        "panel_logp": scored[: len(questions)].tolist(),
        "heldout_panel_logp": scored[len(questions) :].tolist(),
        **sampled,
        "answers": per_question,
    }
    if ev.misalignment is not None:
        result["misalignment"] = misalignment_of(config, model)
    return result


def evaluation_panel(config: ExperimentConfig) -> list[str]:
    """The answers scored: the target first, the config's other traits, then the panel."""
    ev = config.experiment.evaluation
    panel = ev.panel or PANELS[ev.category]
    return list(dict.fromkeys((ev.target, *config.trait_targets(), *panel)))


def misalignment_of(config: ExperimentConfig, model) -> dict:
    from sublearn.core.config import Sampling
    from sublearn.eval.misalignment import evaluate_misalignment
    from sublearn.generators.backends import load_teacher

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


@dataclass(frozen=True)
class EvaluateStep(Step):
    """One model's evaluation: keyed by the base weights and their precision, the adapter's
    digest, the system prompt, the evaluation settings and the panel."""

    config: ExperimentConfig
    label: str
    adapter: str | None
    system: str | None
    name = "evaluate"
    code = (
        "sublearn.eval.preference",
        "sublearn.eval.preference_questions",
        "sublearn.eval.misalignment",
        "sublearn.generators.hf_teacher",
        "sublearn.flows.evaluation",
    )

    def inputs(self) -> dict:
        from sublearn.core.model_source import resolve_model

        config = self.config
        weights = Path(self.adapter) / "adapter_model.safetensors" if self.adapter else None
        return {
            "base": resolve_model(config.teacher.model, config.teacher.revision).lineage(),
            "dtype": config.teacher.precision().dtype,
            "adapter": file_sha256(weights) if weights else None,
            "system": self.system,
            "evaluation": config.experiment.evaluation.model_dump(),
            "panel": evaluation_panel(config),
        }

    def compute(self, folder: Path, fresh: bool) -> dict:
        result = evaluate_model(self.config, self.label, self.adapter, self.system)
        write_json(result, folder / RESULT)
        dtype = self.config.teacher.precision().dtype
        return {"files": [RESULT], "rows": len(result["answers"]), "dtype": dtype}
