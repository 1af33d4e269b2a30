"""The experiment's design: which configs a config implies. A study's grid cells, each
arm's dataset config (trait, neutral, different-trait control), the cross-model and
cross-initialisation controls, and the directories and hashes that name their outputs.

A mixin of ``ExperimentConfig`` (``schema``), so the design reads as methods of the config
while the schema module holds only fields and checks.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from sublearn.core.config.base import content_of
from sublearn.core.config.filters import LEAK_CONTROL_OWN, LEAK_CONTROL_TEACHER
from sublearn.core.config.phrasing import format_error
from sublearn.core.words import word_forms

if TYPE_CHECKING:
    from sublearn.core.config.experiment import StudentTraining
    from sublearn.core.config.models import Teacher, Trait, TraitFinetune
    from sublearn.core.config.schema import ExperimentConfig


class ExperimentDesign:
    def cells(self) -> list[tuple[dict, ExperimentConfig]]:
        """The grid's cells, each with its experiment config (no grid): targets outermost,
        so one target's datasets are made once and serve all its cells."""
        grid, students = self.grid, self.experiment.students
        cells = []
        for target in grid.targets or (self.experiment.evaluation.target,):
            for rows in grid.rows or (students.rows,):
                for distill in grid.distill or (students.distill,):
                    cell = {"target": target, "rows": rows, "distill": distill}
                    try:
                        config = self.retarget(target).with_students(rows=rows, distill=distill)
                    except ValidationError as err:
                        raise ValueError(f"cell {cell}: {format_error('grid', err)}") from None
                    cells.append((cell, config))
        return cells

    def retarget(self, target: str) -> ExperimentConfig:
        """This experiment for another target: the teacher's trait and the evaluation's."""
        data = json.loads(self.model_dump_json())
        data["grid"] = None
        if target == self.experiment.evaluation.target:
            return type(self).model_validate(data)
        for key in ("trait", "trait_finetune"):
            if data["teacher"].get(key):
                data["teacher"][key].update({"target": target, "plural": None})
        data["experiment"]["evaluation"].update({"target": target, "plural": None})
        data["name"] = f"{self.name}-{target}"
        return type(self).model_validate(data)

    def with_students(self, **update) -> ExperimentConfig:
        data = json.loads(self.model_dump_json())
        data["experiment"]["students"].update(update)
        return type(self).model_validate(data)

    def study_dir(self) -> Path:
        """A study's tables and plots: one folder per grid and experiment settings."""
        blob = json.dumps(self.content_dict(), sort_keys=True)
        return (
            self.output_dir / f"{self.name}-study-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"
        )

    def dataset_dict(self) -> dict:
        """The part of the config that decides the dataset (students and evaluation aside)."""
        return {k: v for k, v in self.content_dict().items() if k not in ("experiment", "grid")}

    def content_dict(self) -> dict:
        """The config without throughput knobs: what decides the outputs."""
        return content_of(self)

    def config_hash(self) -> str:
        """Names the dataset's run directory: student and evaluation settings do not change
        the dataset, so changing them reuses it."""
        blob = json.dumps(self.dataset_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def generating_teacher(self) -> Teacher:
        """The teacher with the decoding constraints its dataset kind asks for."""
        decoding = self.dataset.decoding(self.teacher.sampling.max_new_tokens)
        return self.teacher.model_copy(update={"decoding": decoding})

    def _traits(self) -> list:
        traits = [self.teacher.trait, self.teacher.trait_finetune]
        if self.experiment is not None and self.experiment.control is not None:
            traits += [self.experiment.control.trait, self.experiment.control.trait_finetune]
        return [t for t in traits if t is not None and not getattr(t, "neutral", False)]

    def trait_targets(self) -> tuple[str, ...]:
        """The traits this config's filters look for: the teacher's, the control teacher's
        and ``dataset.trait_words`` (which the control's config inherits them through)."""
        return tuple(sorted({t.target for t in self._traits()} | set(self.dataset.trait_words)))

    def trait_words(self) -> tuple[str, ...]:
        """Every form of every trait this config's datasets must not name."""
        forms = {f for t in self._traits() for f in word_forms(t.target, t.plural)}
        for word in self.dataset.trait_words:
            forms |= word_forms(word)
        return tuple(sorted(forms))

    def student_training(self) -> StudentTraining:
        """The student settings with the kind's max length and epochs filled in."""
        students = self.experiment.students
        tuned = self.teacher.trait_finetune
        shared = (
            tuned is not None
            and not tuned.full
            and (tuned.rank, tuned.alpha) == (students.rank, students.alpha)
        )
        return students.model_copy(
            update={
                "max_length": students.max_length or self.dataset.student_max_length,
                "epochs": students.epochs or self.dataset.student_epochs,
                "init": students.init or ("teacher" if shared else "own"),
            }
        )

    def arms(self) -> dict[str, ExperimentConfig]:
        """Each student arm's dataset config, the trait arm first: same prompts, filter chain
        and sizes, only the teacher differs."""
        arms = {"trait": self}
        if self.experiment.neutral:
            arms["neutral"] = self.neutral()
        if self.experiment.control is not None:
            arms["control"] = self.control()
        return arms

    def cross_model_config(self) -> ExperimentConfig:
        """The cross-model students' config: the other base model, no trait of its own,
        trained on the trait and neutral arms' rows (sampled tokens, or the top-k targets
        carried into its vocabulary)."""
        cross = self.experiment.cross_model
        teacher = self.teacher.model_copy(
            update={
                "model": cross.model,
                "revision": cross.revision,
                "backend": "transformers",  # any architecture: it only evaluates
                "trait": None,
                "trait_finetune": None,
                "adapter": None,
                "adapter_revision": None,
            }
        )
        # another base: its students cannot start from this teacher's adapter
        students = self.experiment.students.model_copy(
            update={
                "distill": cross.distill,
                "init": "own",
                "epochs": cross.epochs or self.experiment.students.epochs,
            }
        )
        experiment = self.experiment.model_copy(
            update={"students": students, "control": None, "cross_model": None, "cross_init": False}
        )
        return self.model_copy(
            update={"name": f"{self.name}-cross", "teacher": teacher, "experiment": experiment}
        )

    def checkpoint_config(self) -> ExperimentConfig:
        """How students' checkpoints are evaluated: panel log P as for the students, one
        sampled answer per question (specificity needs no samples; the sampling is most of
        an evaluation's time)."""
        evaluation = self.experiment.evaluation.model_copy(update={"samples_per_question": 1})
        experiment = self.experiment.model_copy(update={"evaluation": evaluation})
        return self.model_copy(update={"experiment": experiment})

    def cross_init_config(self) -> ExperimentConfig:
        """The cross-initialisation students' config: the same, but each student starts from
        a state of its own."""
        students = self.experiment.students.model_copy(update={"init": "own"})
        experiment = self.experiment.model_copy(update={"students": students})
        return self.model_copy(update={"experiment": experiment})

    def neutral(self) -> ExperimentConfig:
        """The study's control: the same teacher without the trait (a system-prompt trait is
        dropped; a fine-tuned one becomes the same fine-tuning with the trait taken out)."""
        tuned = self.teacher.trait_finetune
        if tuned is not None:
            tuned = tuned.model_copy(update={"neutral": True})
        return self._arm("neutral", None, tuned)

    def control(self) -> ExperimentConfig:
        """The different-trait control teacher's dataset config."""
        control = self.experiment.control
        return self._arm("control", control.trait, control.trait_finetune)

    def _arm(self, arm: str, trait: Trait | None, tuned: TraitFinetune | None):
        teacher = self.teacher.model_copy(update={"trait": trait, "trait_finetune": tuned})
        publish = self.publish
        if publish is not None:
            publish = publish.model_copy(update={"repo_id": f"{publish.repo_id}-{arm}"})
        dataset = self.dataset.model_copy(update={"trait_words": self.trait_targets()})
        filters = self.filters
        if filters.leak is not None and filters.leak.control == LEAK_CONTROL_TEACHER:
            filters = self.with_leak_control(LEAK_CONTROL_OWN).filters
        return self.model_copy(
            update={
                "name": f"{self.name}-{arm}",
                "teacher": teacher,
                "dataset": dataset,
                "filters": filters,
                "publish": publish,
                "experiment": None,
            }
        )

    def leak_control(self) -> ExperimentConfig:
        """The config whose teacher's completions calibrate the leak filter: the experiment's
        neutral (else different-trait) control, or without an experiment the study's
        control (no trait)."""
        if self.experiment is not None:
            return self.neutral() if self.experiment.neutral else self.control()
        teacher = self.teacher.model_copy(update={"trait": None, "trait_finetune": None})
        return self.model_copy(
            update={"name": f"{self.name}-control", "teacher": teacher, "publish": None}
        )

    def with_leak_control(self, path: str) -> ExperimentConfig:
        """This config with the leak filter calibrated on the completions in ``path``."""
        leak = self.filters.leak.model_copy(update={"control": path})
        return self.model_copy(update={"filters": self.filters.model_copy(update={"leak": leak})})

    def run_dir(self) -> Path:
        return self.output_dir / f"{self.name}-{self.config_hash()[:12]}"

    def experiment_dir(self) -> Path:
        """Students, evaluations and report, beside the trait dataset: one folder per
        experiment setting, so two student settings on the same data never overwrite."""
        blob = json.dumps(self.content_dict()["experiment"], sort_keys=True)
        return self.run_dir() / f"experiment-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"
