"""The experiment config: one YAML file, validated at the edge into frozen objects.

Every later step reads these objects, never raw dicts, so a typo in a config fails before any
model is loaded. This module holds the top-level schema and the checks that span sections;
the sections sit in modules by concern (``models``, ``datasets``, ``filters``,
``experiment``, ``runs``), the experiment's design (arms, controls, grid cells) in
``design``, reading files and phrasing errors in ``loading``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SerializeAsAny, field_validator, model_validator

from sublearn.core.config.base import OMIT_EMPTY, THROUGHPUT, Frozen, Seed
from sublearn.core.config.datasets import DatasetCommon, NumbersDataset, dataset_settings
from sublearn.core.config.design import ExperimentDesign
from sublearn.core.config.experiment import Experiment, Grid
from sublearn.core.config.filters import SemanticFilters
from sublearn.core.config.models import ANSWER_TOKENS, Decoding, Teacher
from sublearn.core.config.runs import Publish, ScaleOut, Schedule
from sublearn.core.registry import load_plugins_of

# Spellings from before dataset kinds, and where each setting is now.
MOVED = (
    (("filters", "numbers"), "dataset.filter"),
    (("dataset", "numbers"), "dataset.prompts"),
    (("teacher", "sampling", "constrain_to_numbers"), "dataset.constrain_to_numbers"),
    (("teacher", "sampling", "stop_after_numbers"), "dataset.stop_after_numbers"),
    (("teacher", "decoding"), "dataset.constrain_to_numbers"),
)


def old_spelling(data: dict) -> str | None:
    """The one-line error for a setting written where it was before dataset kinds."""
    for path, new in MOVED:
        holder: object = data
        for part in path:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if holder is not None:
            return f"'{'.'.join(path)}' is now '{new}' (with dataset.kind numbers)"
    return None


Module = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")]


class ExperimentConfig(ExperimentDesign, Frozen):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    plugins: tuple[Module, ...] = Field(
        (),
        description="Modules to import before the rest is read: plug-ins that register dataset "
        "kinds, backends or filters (sublearn.core.registry).",
        json_schema_extra=OMIT_EMPTY,
    )
    seed: Seed = 0
    output_dir: Path = Field(Path("runs"), json_schema_extra=THROUGHPUT)
    teacher: Teacher = Teacher()
    dataset: SerializeAsAny[DatasetCommon] = NumbersDataset()
    filters: SemanticFilters = SemanticFilters()
    publish: Publish | None = Field(None, json_schema_extra=THROUGHPUT)
    experiment: Experiment | None = None
    scale_out: ScaleOut = Field(ScaleOut(), json_schema_extra=THROUGHPUT)
    schedule: Schedule | None = Field(None, json_schema_extra=THROUGHPUT)
    grid: Grid | None = None

    @model_validator(mode="before")
    @classmethod
    def _plugins_and_old_spellings(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        moved = old_spelling(data)
        if moved is not None:
            raise ValueError(moved)
        load_plugins_of(data)
        return data

    _dataset_kind = field_validator("dataset", mode="before")(dataset_settings)

    @model_validator(mode="after")
    def _sections_agree(self) -> ExperimentConfig:
        can = self.teacher.capabilities
        backend = f"teacher.backend {self.teacher.backend}"
        students = self.experiment.students if self.experiment else None
        if students and students.distill == "topk" and not self.dataset.teacher_topk:
            raise ValueError("experiment.students.distill 'topk' needs dataset.teacher_topk > 0")
        if self.dataset.teacher_topk and not can.topk_logprobs:
            raise ValueError(f"dataset.teacher_topk: needs local weights ({backend} gives none)")
        shuffled = students is not None and students.shuffle != "none"
        if shuffled and (self.dataset.kind != "numbers" or students.distill != "sampled"):
            raise ValueError(
                "experiment.students.shuffle: shuffles numbers, so it needs dataset.kind "
                "numbers and students.distill sampled (top-k targets follow the tokens)"
            )
        paired = students is not None and students.paired
        if paired and (students.distill != "topk" or not can.teacher_forcing):
            raise ValueError(
                "experiment.students.paired: each arm's targets are its teacher's top-k at "
                "the trait arm's tokens; needs students.distill topk and a teacher.backend "
                "that scores given tokens (torch)"
            )
        on_control = students is not None and students.paired_on == "control"
        if on_control and (not paired or self.experiment.control is None):
            raise ValueError(
                "experiment.students.paired_on: control pairs every arm on the control "
                "teacher's rows; needs students.paired and experiment.control"
            )
        divergent = students is not None and students.loss_on == "divergent"
        if divergent and (not paired or not self.experiment.neutral):
            raise ValueError(
                "experiment.students.loss_on: divergent compares the trait and neutral "
                "teachers at the same tokens; needs students.paired and experiment.neutral"
            )
        if not can.local_weights and self.experiment is not None:
            raise ValueError(
                f"experiment: students fine-tune the teacher's local weights; {backend} "
                "makes datasets (run students on a local copy of the base model)"
            )
        decoding = self.generating_teacher().decoding
        numbers = decoding.model_copy(update={"output_format": None, "think_tokens": None})
        served = self.teacher.server is not None and self.teacher.server.grammar is not None
        if not can.constrained_numbers and not served and numbers != Decoding():
            raise ValueError(
                "dataset.constrain_to_numbers, stop_after_numbers: not possible through "
                f"{backend} without teacher.server.grammar; the numbers filter drops what strays"
            )
        budget = decoding.think_tokens
        if budget is not None and budget + ANSWER_TOKENS > self.teacher.sampling.max_new_tokens:
            raise ValueError(
                f"dataset.think_tokens: {budget} tokens of reasoning leave no room for the "
                f"answer ({ANSWER_TOKENS} tokens) within teacher.sampling.max_new_tokens"
            )
        if decoding.output_format is not None and not self.teacher.takes_grammar():
            raise ValueError(
                f"dataset.constrain_to_format: {backend} takes no grammar; use backend torch, "
                "transformers or vllm, a server with teacher.server.grammar, or leave the "
                "form to the filters"
            )
        if students is not None and students.init == "teacher":
            tuned = self.teacher.trait_finetune
            if tuned is None:
                raise ValueError(
                    "experiment.students.init: teacher starts students from the trait "
                    "adapter's initial state; it needs teacher.trait_finetune"
                )
            if tuned.full:
                raise ValueError(
                    "experiment.students.init: teacher needs an adapter teacher; "
                    "teacher.trait_finetune.method full starts from the base weights, where "
                    "students start with init own"
                )
            if (students.rank, students.alpha) != (tuned.rank, tuned.alpha):
                raise ValueError(
                    "experiment.students.init: teacher needs the teacher's rank and alpha "
                    f"(students {students.rank}/{students.alpha}, teacher "
                    f"{tuned.rank}/{tuned.alpha})"
                )
        crossed = self.experiment is not None and self.experiment.cross_init
        if crossed and self.student_training().init != "teacher":
            raise ValueError(
                "experiment.cross_init: compares with students that start from the "
                "teacher's state; needs teacher.trait_finetune and students.init teacher"
            )
        for name in ("judge", "leak"):
            if getattr(self.filters, name) is not None and not self.trait_targets():
                raise ValueError(
                    f"filters.{name}: no trait to look for; set teacher.trait or "
                    "dataset.trait_words"
                )
        return self

    @model_validator(mode="after")
    def _grid_cells_are_experiments(self) -> ExperimentConfig:
        if self.grid is not None:
            if self.experiment is None:
                raise ValueError("grid: a study runs an experiment per cell; add experiment:")
            self.cells()  # each cell validates as a config of its own
        return self
