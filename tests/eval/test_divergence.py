"""Divergence tokens and the panel by form: pure functions on hand-made inputs."""

from __future__ import annotations

import pytest

from sublearn.eval.divergence import divergence_summary, divergent_positions
from sublearn.eval.panel_form import by_form, form_of


def test_divergent_positions_compare_top_choices_only():
    trait = [[[1, 2], [3, 4], [5, 6]], [[7, 8]]]
    other = [[[1, 9], [4, 3], [5, 6]], [[8, 7]]]
    masks = divergent_positions(trait, other)
    assert masks == [[False, True, False], [True]]
    summary = divergence_summary(masks)
    assert summary["positions"] == 4 and summary["divergent"] == 2
    assert summary["share"] == 0.5
    assert summary["first_token_share"] == 0.5  # row 2 diverges at its first token
    assert summary["later_share"] == 0.5  # one of two later positions
    assert summary["rows_with_divergence"] == 2


def test_rows_of_different_lengths_are_an_error():
    with pytest.raises(ValueError, match="row 0"):
        divergent_positions([[[1], [2]]], [[[1]]])


def test_the_panel_by_form_names_the_targets_peers():
    spec = {"owl": 0.4, "otter": 0.5, "ostrich": 0.1, "eagle": 0.3, "cat": -0.2, "dog": -0.1}
    tokens = {"owl": "Owl", "otter": "Ot", "ostrich": "O", "eagle": "E", "cat": "Cat", "dog": "Dog"}
    forms = {w: form_of(w, t) for w, t in tokens.items()}
    got = by_form(spec, forms, "owl")
    assert got["first_letter"]["peers"] == ["otter", "ostrich"]
    assert got["first_letter"]["beats_peers"] is False  # otter moved more
    assert got["article"]["target_group"] == "an"
    assert set(got["article"]["peers"]) == {"otter", "ostrich", "eagle"}
    assert got["first_token"]["peers"] == [] and got["first_token"]["beats_peers"] is None
    assert got["first_letter"]["groups"]["c"] == {"words": ["cat"], "mean": -0.2}
    spec["owl"] = 0.6
    assert by_form(spec, forms, "owl")["article"]["beats_peers"] is True


def test_the_crossover_shows_a_double_dissociation_where_there_is_one():
    """Synthetic students: owl students raise owl, dolphin students raise dolphin; the 2x2
    has both diagonals specific (rank 1), the off-diagonals near zero."""
    import numpy as np

    from sublearn.eval.transfer import crossover, label

    panel = ["owl", "dolphin", "cat", "dog", "eagle", "fox"]
    rng = np.random.default_rng(0)

    def model(raise_: str | None) -> dict:
        logp = rng.normal(-8, 0.05, size=(6, len(panel)))
        if raise_:
            logp[:, panel.index(raise_)] += 1.0
        return {"panel_logp": logp.tolist(), "per_question": [0.0] * 6}

    by_label = {"base": model(None)}
    for seed in (0, 1):
        by_label[label("trait", seed)] = model("owl")
        by_label[label("control", seed)] = model("dolphin")
        by_label[label("neutral", seed)] = model(None)
    others = ["cat", "dog", "eagle", "fox"]
    got = crossover(
        by_label, [0, 1], panel, {"trait": "owl", "control": "dolphin"}, "neutral", others
    )
    cells = got.cells
    for arm, own, other in (("trait", "owl", "dolphin"), ("control", "dolphin", "owl")):
        assert cells[arm][own].specificity.low > 0.8 and cells[arm][own].rank == 1
        off = cells[arm][other]
        assert abs(off.specificity.mean) < 0.1 and off.of == 5
        mine = got.head_to_head[arm]
        assert mine.specificity.low > 0.8 and mine.rank == 1
        assert mine.heldout_specificity is None and mine.heldout_rank is None


def test_head_to_head_ranks_each_arm_against_the_other_on_both_question_sets():
    """Dog students whose dog moved less than the owl students' fell: against the neutral
    students dog is not specific, against the owl students it is first, on the main and the
    held-out questions; the report prints both rows."""
    import numpy as np

    from sublearn.eval.preference_report import head_to_head_lines
    from sublearn.eval.transfer import crossover, label

    panel = ["owl", "dog", "otter", "cat", "eagle", "fox"]
    rng = np.random.default_rng(1)

    def model(moves: dict[str, float]) -> dict:
        scored = {}
        for key in ("panel_logp", "heldout_panel_logp"):
            logp = rng.normal(-8, 0.05, size=(6, len(panel)))
            for word, by in moves.items():
                logp[:, panel.index(word)] += by
            scored[key] = logp.tolist()
        return scored | {"per_question": [0.0] * 6}

    by_label = {"base": model({})}
    for seed in (0, 1):
        by_label[label("trait", seed)] = model({"owl": 0.6, "otter": 0.9, "dog": -0.5})
        by_label[label("control", seed)] = model({"owl": 0.3, "dog": -0.2})
        by_label[label("neutral", seed)] = model({})
    others = ["otter", "cat", "eagle", "fox"]
    got = crossover(by_label, [0, 1], panel, {"trait": "owl", "control": "dog"}, "neutral", others)
    assert got.cells["control"]["dog"].specificity.high < 0
    dog = got.head_to_head["control"]
    assert dog.specificity.low > 0 and dog.rank == 1 and dog.heldout_rank == 1
    assert dog.heldout_specificity.low > 0
    owl = got.head_to_head["trait"]
    assert owl.specificity.low > 0 and owl.rank == 2 and owl.heldout_rank == 2
    lines = head_to_head_lines(got)
    assert lines[-2].startswith("| trait | control | owl |") and "| 2 of 5 |" in lines[-2]
    assert lines[-1].startswith("| control | trait | dog |") and lines[-1].endswith("| 1 of 5 |")
