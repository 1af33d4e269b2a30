"""An experiment's results as typed objects, from the statistics to the report and the
terminal: each figure is a ``Figure`` (mean and interval), each comparison of two arms a
``Comparison``, the whole an ``ExperimentResults``. ``results.json`` is their JSON form, read
back with ``ExperimentResults.model_validate``.

The models evaluated (``evaluations``) stay the evaluation step's own records: their fields
are the step's output format, written and read by ``flows.evaluation``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Figure(Result):
    """A mean of paired differences with its two-stage bootstrap interval
    (``eval.stats.seed_question_bootstrap``)."""

    mean: float
    low: float
    high: float
    per_seed: list[float]
    seeds: int
    n: int


class Comparison(Result):
    """One arm's students against a reference (another arm, or the base model)."""

    arm: str
    against: str
    logp_target: Figure
    specificity: Figure
    heldout_logp_target: Figure | None = None
    heldout_specificity: Figure | None = None
    p_target: Figure
    more: dict[str, Figure] = {}  # plug-in metrics' figures (``heldout_`` prefixed too)


class Placebo(Result):
    """The target's specificity ranked among every panel answer's own."""

    rank: int
    of: int
    p: float
    ahead: list[str]
    specificity: dict[str, float]


class Headline(Result):
    """The figure that decides whether the trait transferred, and its verdict."""

    against: str
    specificity: Figure
    heldout_specificity: Figure | None
    logp_target: Figure
    p_target: Figure
    placebo: Placebo
    verdict: str
    heldout_rank: int | None = None  # the target's placebo rank on the held-out questions


class CrossInit(Comparison):
    """The cross-initialisation students against the headline's reference."""

    placebo: Placebo
    verdict: str


class CrossoverCell(Result):
    specificity: Figure
    rank: int
    of: int
    heldout_specificity: Figure | None = None
    heldout_rank: int | None = None


class Crossover(Result):
    """Two trait arms by their two targets: each arm's specificity for each target against the
    reference students, and head to head: each arm's own target against the other trait arm's
    students (the tightest contrast: the teachers differ only in their target)."""

    against: str
    targets: dict[str, str]
    cells: dict[str, dict[str, CrossoverCell]]
    head_to_head: dict[str, CrossoverCell] | None = None


class TableRow(Result):
    """One model's sampled P(target) and log P(target), with their intervals."""

    model: str
    p_target: float
    p_low: float
    p_high: float
    logp_target: float
    logp_low: float
    logp_high: float
    top_answer: str


class PanelShifts(Result):
    against: str
    shifts: dict[str, Figure]


class CheckpointArm(Result):
    against: str
    specificity: Figure
    heldout_specificity: Figure | None
    rank: int
    of: int


class CheckpointPoint(Result):
    """Specificity at one optimiser step, per arm that has checkpoints."""

    step: int
    trait: CheckpointArm | None = None
    crossinit: CheckpointArm | None = None


class Audit(Result):
    """A transfer audit's inputs: the published dataset read, its control, the base model."""

    dataset: dict
    control: str | None
    base: str


class ExperimentResults(Result):
    """Everything an experiment's report says, as computed from its evaluations."""

    target: str
    rows_per_student: int
    distill: str
    shuffle: str
    paired: bool
    loss_on: str
    paired_on: str = "trait"  # whose rows the paired arms learned
    seeds: list[int]
    arms: list[str]
    panel: list[str]
    others: list[str]
    evaluations: list[dict]
    comparisons: list[Comparison]
    headline: Headline
    cross_init: CrossInit | None
    crossover: Crossover | None
    by_form: dict
    panel_shifts: PanelShifts
    shifts_from_base: dict[str, Figure]
    teacher_shift_from_base: float | None
    table: list[TableRow]
    dtype: str
    cpu: str
    divergence: dict | None = None
    checkpoints: list[CheckpointPoint] | None = None
    cross_model: CrossModelResults | None = None
    audit: Audit | None = None


class CrossModelResults(ExperimentResults):
    """The cross-model control's results: the same, for students of another base model."""

    model: str
    translation: dict[str, dict] | None = None  # top-k targets carried over: each arm's drops


ExperimentResults.model_rebuild()
