"""Transfer statistics over the arms of an experiment, as pure functions of the evaluations.

Every comparison is the trait student minus a reference (the neutral control student of the
same seed, the different-trait control student, or the base model), paired over questions and
bootstrapped over seeds, then questions. Transfer is judged by specificity: how much more the
target's log P moved than the mean of the panel's other answers did. A bare log P difference can
be a general drift in how likely the model is to answer with any animal; it is shown, but only
specificity counts.
"""

from __future__ import annotations

import numpy as np

from sublearn.core.registry import METRICS
from sublearn.eval.results import (
    Comparison,
    Crossover,
    CrossoverCell,
    Figure,
    Placebo,
)
from sublearn.eval.stats import seed_question_bootstrap

ARMS = {
    "trait": "trait student",
    "neutral": "neutral student",
    "control": "control student",
    "crossinit": "cross-init trait student",
}


def label(arm: str, seed: int) -> str:
    return f"{ARMS[arm]} (seed {seed})"


def panel_matrix(evaluation: dict, questions: str = "main") -> np.ndarray:
    """(questions, panel answers) log P of one model's evaluation."""
    key = "panel_logp" if questions == "main" else "heldout_panel_logp"
    return np.asarray(evaluation[key], dtype=float)


def arm_matrices(by_label: dict, arm: str, seeds, questions: str) -> np.ndarray:
    """(seeds, questions, answers) for a student arm; the base model repeated per seed."""
    if arm == "base":
        return np.stack([panel_matrix(by_label["base"], questions)] * len(seeds))
    return np.stack([panel_matrix(by_label[label(arm, s)], questions) for s in seeds])


def figure(diffs: np.ndarray) -> Figure:
    """A (seeds, questions) array of paired differences as its mean and interval."""
    return Figure(**seed_question_bootstrap(diffs))


def specificity(shift: np.ndarray, target: int, others: list[int]) -> np.ndarray:
    """Per (seed, question): the target's shift minus the mean shift of the other answers."""
    return shift[..., target] - shift[..., others].mean(axis=-1)


def target_logp(shift: np.ndarray, target: int, others: list[int]) -> np.ndarray:
    """Per (seed, question): the target's log P shift."""
    return shift[..., target]


# Figures of the panel's log P shift, per (seed, question), each bootstrapped the same way; a
# plug-in adds one with ``@METRICS.register(name)`` on a function of (shift, target, others).
METRICS.add("logp_target", target_logp)
METRICS.add("specificity", specificity)
BUILT_IN_METRICS = ("logp_target", "specificity")


def compare(by_label: dict, arm: str, against: str, seeds, panel, target, others) -> Comparison:
    """Trait-arm minus reference-arm effects: every registered metric of the panel's log P
    shift (log P(target) and specificity built in) on the main and, when scored, the held-out
    questions, and sampled P(target)."""
    t, rest = panel.index(target), [panel.index(w) for w in others]
    figures, more = {}, {}
    for questions in ("main", "heldout"):
        if questions == "heldout" and not by_label["base"].get("heldout_panel_logp"):
            continue
        shift = arm_matrices(by_label, arm, seeds, questions) - arm_matrices(
            by_label, against, seeds, questions
        )
        prefix = "" if questions == "main" else "heldout_"
        for entry in METRICS.entries():
            into = figures if entry.name in BUILT_IN_METRICS else more
            into[f"{prefix}{entry.name}"] = figure(entry.load()(shift, t, rest))
    sampled = [np.asarray(by_label[label(arm, s)]["per_question"]) for s in seeds]
    reference = [
        np.asarray(
            (by_label["base"] if against == "base" else by_label[label(against, s)])["per_question"]
        )
        for s in seeds
    ]
    p_target = figure(np.stack(sampled) - np.stack(reference))
    return Comparison(arm=arm, against=against, p_target=p_target, more=more, **figures)


def panel_shifts(
    by_label: dict, arm: str, against: str, seeds, panel, questions: str = "main"
) -> dict[str, Figure]:
    """Each panel answer's log P shift (arm minus reference), with its interval."""
    shift = arm_matrices(by_label, arm, seeds, questions) - arm_matrices(
        by_label, against, seeds, questions
    )
    return {word: figure(shift[..., i]) for i, word in enumerate(panel)}


def placebo(shifts: dict[str, Figure], target: str, others: list[str]) -> Placebo:
    """The target's specificity beside each other answer's own (its shift minus the mean shift
    of the rest): the target's rank among them (1: it moved most) and the share of answers whose
    specificity is at least the target's, the target included (a permutation p-value: with 15
    others it cannot go below 1/16)."""
    words = [target, *others]
    means = {w: shifts[w].mean for w in words}
    spec = {}
    for w in words:
        rest = [means[o] for o in others if o != w]
        spec[w] = means[w] - sum(rest) / len(rest)
    at_least = sum(spec[w] >= spec[target] for w in words)
    ahead = sorted((w for w in others if spec[w] >= spec[target]), key=lambda w: -spec[w])
    return Placebo(
        rank=at_least, of=len(words), p=at_least / len(words), ahead=ahead, specificity=spec
    )


def shifts_from_base(
    by_label: dict, arms: list[str], seeds, target_index: int
) -> dict[str, Figure]:
    """Each student arm's log P(target) shift from the base model, per seed and pooled."""
    base = arm_matrices(by_label, "base", seeds, "main")[..., target_index]
    return {
        arm: figure(arm_matrices(by_label, arm, seeds, "main")[..., target_index] - base)
        for arm in arms
    }


def verdict(effect: Figure, rank: Placebo) -> str:
    """What the specificity interval and the placebo rank say together, in words that never
    call a bare shift transfer: the target must move more than the others' mean (interval above
    zero) and more than each other answer does (rank 1)."""
    if effect.low > 0 and rank.rank == 1:
        return "transfer: the target moved more than every other answer and than their mean"
    if effect.low > 0:
        ahead = ", ".join(rank.ahead)
        return (
            f"not specific: the target moved more than the others' mean, but {ahead} moved as "
            "much or more"
        )
    if effect.high < 0:
        return "no transfer: the target moved less than the other answers did"
    return "no evidence of transfer: the target moved no more than the other answers did"


def crossover(
    by_label: dict, seeds, panel, targets: dict[str, str], against: str, others
) -> Crossover:
    """The 2x2 of two trait arms and their two targets: each arm's students' specificity for
    each target, against the same reference students. Transfer of both traits shows as a
    double dissociation: each arm's own target specific (diagonal above zero, placebo rank 1),
    the other's not. Head to head, each arm's own target against the other arm's students, on
    the main and held-out questions: both specific is the dissociation the 160M replication
    reports, and it needs no neutral teacher."""
    cells: dict[str, dict[str, CrossoverCell]] = {}
    for arm in targets:
        shifts = panel_shifts(by_label, arm, against, seeds, panel)
        for answer in targets.values():
            effect = compare(by_label, arm, against, seeds, panel, answer, others)
            rank = placebo(shifts, answer, others)
            cells.setdefault(arm, {})[answer] = CrossoverCell(
                specificity=effect.specificity, rank=rank.rank, of=rank.of
            )
    first, second = targets
    head_to_head = {
        arm: own_target_against(by_label, seeds, panel, arm, other, targets[arm], others)
        for arm, other in ((first, second), (second, first))
    }
    return Crossover(against=against, targets=targets, cells=cells, head_to_head=head_to_head)


def own_target_against(
    by_label: dict, seeds, panel, arm: str, other: str, target: str, others
) -> CrossoverCell:
    """One trait arm's own target against another trait arm's students: its specificity and
    placebo rank on the main questions and, when scored, the held-out ones."""
    effect = compare(by_label, arm, other, seeds, panel, target, others)
    rank = placebo(panel_shifts(by_label, arm, other, seeds, panel), target, others)
    return CrossoverCell(
        specificity=effect.specificity,
        rank=rank.rank,
        of=rank.of,
        heldout_specificity=effect.heldout_specificity,
        heldout_rank=heldout_rank(by_label, seeds, panel, effect, target, others),
    )


def heldout_rank(
    by_label: dict, seeds, panel, effect: Comparison, target: str, others
) -> int | None:
    """The target's placebo rank on the held-out questions for ``effect``'s arm against its
    reference; none when the held-out questions were not scored."""
    if effect.heldout_specificity is None:
        return None
    held = panel_shifts(by_label, effect.arm, effect.against, seeds, panel, "heldout")
    return placebo(held, target, others).rank
