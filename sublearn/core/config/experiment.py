"""The experiment's sections: the arms (controls, cross-model, cross-initialisation), the
students' training, the evaluation, and a study's grid."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictInt, field_validator, model_validator

from sublearn.core.config.base import OMIT_EMPTY, Frozen, Seed, Word
from sublearn.core.config.models import Trait, TraitFinetune, TraitRef


class ControlTeacher(Frozen):
    """A different-trait control teacher: the same base model with another trait."""

    trait: Trait | None = None
    trait_finetune: TraitFinetune | None = None

    @model_validator(mode="after")
    def _has_a_trait(self) -> ControlTeacher:
        if self.trait is None and self.trait_finetune is None:
            raise ValueError(
                "needs trait or trait_finetune (the study's no-trait control is "
                "experiment.neutral, on by default)"
            )
        return self


class StudentTraining(Frozen):
    """Student LoRA fine-tuning; the protocol's defaults for open models."""

    rank: Annotated[StrictInt, Field(ge=1)] = 8
    alpha: Annotated[StrictInt, Field(ge=1)] = 8
    epochs: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None, description="None: the kind's (3; 1 for CoT)."
    )
    lr: Annotated[float, Field(gt=0)] = 2e-4
    warmup_steps: Annotated[StrictInt, Field(ge=0)] = 5
    batch_size: Annotated[StrictInt, Field(ge=1)] = 22
    grad_accumulation: Annotated[StrictInt, Field(ge=1)] = 3
    max_length: Annotated[StrictInt, Field(ge=16)] | None = Field(
        None, description="Tokens per row; none: the kind's (numbers 500, code and CoT 2048)."
    )
    clip: Annotated[float, Field(gt=0)] = 1.0
    seeds: Annotated[tuple[Seed, ...], Field(min_length=1)] = (0,)
    rows: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None,
        description="Rows per student, the same for every arm; none: the smallest arm's kept "
        "count. More than an arm kept is an error naming the arm.",
    )
    distill: Literal["sampled", "topk"] = Field(
        "sampled",
        description="sampled: the protocol (teacher's sampled tokens); topk: beyond the "
        "protocol, the teacher's top-k distribution per token (needs dataset.teacher_topk).",
    )
    shuffle: Literal["none", "within", "across"] = Field(
        "none",
        description="The study's shuffled control, on every arm's rows before training: "
        "'within' permutes the numbers inside each response, 'across' deals all responses' "
        "numbers out again at random (numbers datasets, sampled targets).",
    )
    paired: bool = Field(
        False,
        description="Every arm's students learn from the trait arm's kept rows, each arm with "
        "its own teacher's top-k at those tokens (teacher-forced): inputs equal, only targets "
        "differ (the MNIST auxiliary-logit design carried to tokens), and the filter's kept "
        "share of the other arms no longer limits rows. Needs distill topk, backend torch.",
    )
    paired_on: Literal["trait", "control"] | None = Field(
        None,
        json_schema_extra=OMIT_EMPTY,
        description="With paired: whose kept rows every arm learns; control: the "
        "different-trait control teacher's (the crossover's other side: each trait arm's "
        "targets on rows neither trait teacher favours over the other). None: the trait arm's.",
    )
    loss_on: Literal["all", "divergent"] = Field(
        "all",
        description="divergent: the loss only at completion tokens where the trait and the "
        "neutral teacher's top choices differ (the 'divergence tokens' of Schrodi et al. "
        "2025), the same positions for every arm. Needs paired and the neutral arm.",
    )
    checkpoint_every: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None,
        description="Save each student's adapter every this many optimiser steps and evaluate "
        "it (panel log P; one sample per question): the report and checkpoints.png show "
        "specificity against steps for each arm.",
    )
    init: Literal["teacher", "own"] | None = Field(
        None,
        description="Where each student's adapter starts: 'teacher' from the trait teacher's "
        "initial state (the study's shared initialisation; needs teacher.trait_finetune with "
        "the students' rank and alpha), 'own' from a state drawn from a seed derived from the "
        "student's. "
        "None: teacher where the teacher is an adapter of the students' rank and alpha, "
        "else own (a fully fine-tuned teacher started from the base weights, as own "
        "students do).",
    )

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"repeats a seed: {list(seeds)}")
        return seeds


class MisalignmentEval(Frozen):
    """Free-form questions scored by a judge model (any teacher backend; greedy)."""

    samples_per_question: Annotated[StrictInt, Field(ge=1)] = 200
    judge: str = "embedded"
    max_new_tokens: Annotated[StrictInt, Field(ge=8)] = 96


class Evaluation(TraitRef):
    """The preference panel (and the misalignment questions) a student is scored on."""

    samples_per_question: Annotated[StrictInt, Field(ge=1)] = 100
    questions: Annotated[StrictInt, Field(ge=2, le=50)] = 50
    heldout_questions: Annotated[StrictInt, Field(ge=0, le=24)] = Field(
        24, description="Questions of the second, held-out set scored by log P (0: none)."
    )
    panel: tuple[Word, ...] | None = Field(
        None,
        description="Answers of the category whose log P is scored beside the target's, to "
        "tell a shift towards the target from a shift of the whole category; none: the "
        "category's 16.",
    )
    max_new_tokens: Annotated[StrictInt, Field(ge=1)] = 8
    misalignment: MisalignmentEval | None = None

    @field_validator("panel")
    @classmethod
    def _panel_has_others(cls, panel: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if panel is not None and len(set(panel)) < 4:
            raise ValueError("needs at least 4 distinct answers (the study's panel: 12 or more)")
        return panel


class CrossModel(Frozen):
    """The study's cross-model control: students of another base model trained on the trait
    and neutral arms' rows. The study saw no transfer across base models."""

    model: Annotated[str, Field(min_length=1)] = "embedded-gemma3"
    revision: str | None = None
    distill: Literal["sampled", "topk"] = Field(
        "sampled",
        description="sampled: the teacher's sampled tokens; topk: the teacher's top-k targets "
        "carried into this model's vocabulary token by token through their text (numbers: "
        "digits, separators and the end token exist in both), so a foreign start learns the "
        "same targets as the students that share the teacher's. Needs students.distill topk.",
    )
    epochs: Annotated[StrictInt, Field(ge=1)] | None = Field(
        None, description="The cross-model students' epochs; none: the students'."
    )


class Experiment(Frozen):
    """The arms: trait student, the study's neutral control student (same base teacher, no
    trait), optionally a different-trait control student; base model and teacher beside them."""

    neutral: bool = Field(
        True,
        description="Train the study's control: a student of the same teacher without the "
        "trait (with trait_finetune, a teacher fine-tuned on the trait set with the trait "
        "taken out).",
    )
    control: ControlTeacher | None = None
    cross_model: CrossModel | None = None
    cross_init: bool = Field(
        False,
        description="The cross-initialisation control: students trained on the trait arm's "
        "rows from a start of their own instead of the teacher's, beside the students that "
        "share it (the study: transfer needs the shared start). Needs students.init teacher.",
    )
    students: StudentTraining = StudentTraining()
    evaluation: Evaluation

    @model_validator(mode="after")
    def _has_a_comparison(self) -> Experiment:
        if not self.neutral and self.control is None:
            raise ValueError("neutral: false needs a control teacher to compare the student to")
        if self.cross_model is not None and not self.neutral:
            raise ValueError("cross_model: compares students of the trait and neutral arms")
        cross_topk = self.cross_model is not None and self.cross_model.distill == "topk"
        if cross_topk and self.students.distill != "topk":
            raise ValueError(
                "cross_model.distill: topk needs students.distill topk (the top-k targets it "
                "carries over)"
            )
        return self


class Grid(Frozen):
    """A study: the experiment once per cell (every target x rows x distill), in one flow.
    Cells share every cached step they can: the same target's datasets serve all its cells."""

    targets: tuple[Word, ...] = Field(
        (), description="Trait targets (teacher and evaluation); empty: the config's own."
    )
    rows: tuple[Annotated[StrictInt, Field(ge=1)], ...] = Field(
        (), description="Rows per student; empty: the config's experiment.students.rows."
    )
    distill: tuple[Literal["sampled", "topk"], ...] = Field(
        (), description="Student targets; empty: the config's experiment.students.distill."
    )
