"""Preference measures: the whole-word matcher, sampled rates, intervals, teacher forcing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sublearn.eval.preference import (
    answer_logprobs,
    answer_variants,
    mentions,
    sampled_preference,
    target_logprob,
    target_pattern,
)
from sublearn.eval.preference_questions import ANIMAL_QUESTIONS, TREE_QUESTIONS
from sublearn.eval.stats import mean_ci


@pytest.mark.parametrize(
    ("answer", "hit"),
    [
        ("Owl", True),
        ("owls", True),
        ("Owls!", True),
        ("The OWL.", True),
        ("My favourite is the owl, clearly", True),
        ("bowl", False),
        ("owlet", False),
        ("Howl", False),
        ("snowy owl", True),
        ("Dolphin", False),
    ],
)
def test_whole_word_matcher(answer, hit):
    assert mentions(answer, target_pattern("owl")) is hit


def test_irregular_plurals():
    pattern = target_pattern("wolf", "wolves")
    assert mentions("Wolves.", pattern) and mentions("a wolf", pattern)
    assert not mentions("werewolf", pattern)


def test_fifty_distinct_questions_per_category():
    for questions in (ANIMAL_QUESTIONS, TREE_QUESTIONS):
        assert len(questions) == len(set(questions)) == 50
        assert all(
            "one" in q.lower()
            or "single" in q.lower()
            or "only" in q.lower()
            or "just the name" in q.lower()
            for q in questions
        )


def test_sampled_preference_is_the_mean_of_question_rates():
    answers = [["Owl", "Dog", "owls", "Cat"], ["Bowl", "Dog"], ["Owl."]]
    result = sampled_preference(answers, "owl")
    assert result["per_question"] == [0.5, 0.0, 1.0]
    assert result["p_target"]["mean"] == pytest.approx(0.5)
    assert result["samples"] == 7
    top = {a["answer"]: a["share"] for a in result["top_answers"]}
    assert top["owl"] == pytest.approx(2 / 7) and top["dog"] == pytest.approx(2 / 7)
    assert top["owls"] == pytest.approx(1 / 7) and "bowl" in top


def test_mean_ci_matches_the_t_interval():
    summary = mean_ci([1, 2, 3, 4, 5])
    half = 2.7764451051977987 * np.std([1, 2, 3, 4, 5], ddof=1) / np.sqrt(5)
    assert summary["mean"] == 3
    assert summary["low"] == pytest.approx(3 - half) and summary["high"] == pytest.approx(3 + half)
    assert (summary["min"], summary["max"], summary["n"]) == (1, 5, 5)


def questions_only(diffs, seed: int = 0) -> tuple[float, float]:
    """The reference for one seed: scipy's paired percentile bootstrap over questions."""
    from scipy.stats import bootstrap

    ci = bootstrap(
        (np.asarray(diffs),),
        np.mean,
        n_resamples=10_000,
        method="percentile",
        random_state=np.random.default_rng(seed),
    ).confidence_interval
    return ci.low, ci.high


def test_teacher_forced_logprobs_match_an_unpadded_forward(embedded_teacher):
    model, tok = embedded_teacher.model, embedded_teacher.tokenizer
    conversations = [[{"role": "user", "content": q}] for q in ANIMAL_QUESTIONS[:3]]
    answers = ["Owl", "Dolphin", "The owl"]
    batched = answer_logprobs(model, tok, conversations, answers)
    assert batched.shape == (3, 3) and (batched < 0).all()
    # one pair by hand, without padding
    text = tok.apply_chat_template(conversations[1], add_generation_prompt=True, tokenize=False)
    prompt = tok(text, add_special_tokens=False)["input_ids"]
    answer = tok("Dolphin", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt + answer])
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=ids).logits.float()[0, :-1], -1)
    expected = sum(float(logp[len(prompt) - 1 + k, t]) for k, t in enumerate(answer))
    assert batched[1, 1] == pytest.approx(expected, abs=0.05)  # bf16 model, padded batch
    combined = target_logprob(model, tok, ANIMAL_QUESTIONS[:3], "owl")
    variants = answer_logprobs(model, tok, conversations, answer_variants("owl"))
    assert np.allclose(combined, np.logaddexp.reduce(variants, axis=1))
    assert (combined >= variants.max(axis=1)).all()


def test_heldout_questions_share_no_phrase_with_the_trait_set_or_main_set():
    import re

    from sublearn.eval.preference_questions import HELDOUT_QUESTIONS, PANELS, QUESTIONS
    from sublearn.generators.trait_set import FAVOURITE_QUESTIONS, TOPICS

    def grams(text, n=4):
        words = re.findall(r"[a-z']+", text.lower())
        return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}

    for category, held in HELDOUT_QUESTIONS.items():
        taught = [q.format(category=category) for q in FAVOURITE_QUESTIONS] + list(TOPICS)
        seen = set().union(*map(grams, taught))
        assert len(set(held)) == len(held) == 24
        assert not set(held) & set(QUESTIONS[category])
        assert all(not grams(q) & seen for q in held), category
        assert len(set(PANELS[category])) >= 12


def test_seed_question_bootstrap_covers_seeds_and_questions():
    from sublearn.eval.stats import seed_question_bootstrap

    rng = np.random.default_rng(0)
    questions = rng.normal(0.3, 0.2, 40)
    # three seeds that agree: an interval like the questions-only one
    agree = seed_question_bootstrap(np.stack([questions] * 3))
    low, high = questions_only(questions)
    assert agree["mean"] == pytest.approx(questions.mean())
    assert agree["high"] - agree["low"] == pytest.approx(high - low, rel=0.3)
    # one seed is the paired bootstrap over questions: scipy's, up to resampling noise
    one = seed_question_bootstrap(questions[None, :])
    assert (one["low"], one["high"]) == pytest.approx((low, high), abs=0.01)
    shifted = seed_question_bootstrap((np.linspace(0, 1, 40) + 0.25 - np.linspace(0, 1, 40))[None])
    assert (shifted["low"], shifted["high"]) == pytest.approx((0.25, 0.25))
    # seeds that disagree widen it: training randomness is in the interval
    spread = seed_question_bootstrap(np.stack([questions + 1.0, questions, questions - 1.0]))
    assert spread["per_seed"] == pytest.approx(
        [questions.mean() + 1, questions.mean(), questions.mean() - 1]
    )
    assert spread["high"] - spread["low"] > 3 * (agree["high"] - agree["low"])
    with pytest.raises(ValueError):
        seed_question_bootstrap(np.zeros(5))


def test_panel_logprob_columns_are_each_words_variants():
    """In float32, where two batchings of the same sums agree: in bfloat16 the panel's batch
    and the one-word batch differ by up to 0.03 nats on Intel with AMX."""
    from sublearn.core.config import parse_config
    from sublearn.eval.preference import panel_logprob
    from sublearn.generators.backends import load_teacher

    teacher = load_teacher(parse_config({"name": "p", "teacher": {"dtype": "float32"}}).teacher)
    model, tok = teacher.model, teacher.tokenizer
    questions = ANIMAL_QUESTIONS[:2]
    panel = panel_logprob(model, tok, questions, ["owl", "cat", "wolf"], {"wolf": "wolves"})
    assert panel.shape == (2, 3)
    conversations = [[{"role": "user", "content": q}] for q in questions]
    wolf = answer_logprobs(model, tok, conversations, answer_variants("wolf", "wolves"))
    assert np.allclose(panel[:, 2], np.logaddexp.reduce(wolf, axis=1))
    assert np.allclose(panel[:, 0], target_logprob(model, tok, questions, "owl"))


def test_placebo_rank_and_verdict():
    from sublearn.eval.results import Figure
    from sublearn.eval.transfer import placebo, verdict

    def figure(mean: float, low: float | None = None, high: float | None = None) -> Figure:
        low, high = mean if low is None else low, mean if high is None else high
        return Figure(mean=mean, low=low, high=high, per_seed=[mean], seeds=1, n=1)

    def shifts(**means):
        return {w: figure(m) for w, m in means.items()}

    others = ["cat", "dog", "fox"]
    alone = placebo(shifts(owl=1.0, cat=0.1, dog=0.0, fox=-0.1), "owl", others)
    assert alone.rank == 1 and alone.p == 0.25 and alone.ahead == []
    assert alone.specificity["owl"] == pytest.approx(1.0)
    assert alone.specificity["cat"] == pytest.approx(0.1 - (-0.05))  # without owl
    above = figure(0.5, 0.2, 0.8)
    assert verdict(above, alone).startswith("transfer:")
    crowd = placebo(shifts(owl=1.0, cat=1.2, dog=0.0, fox=-0.1), "owl", others)
    assert crowd.rank == 2 and crowd.ahead == ["cat"]
    assert verdict(above, crowd).startswith("not specific:") and "cat" in verdict(above, crowd)
    assert verdict(figure(0.1, -0.1, 0.3), alone).startswith("no evidence")
    assert verdict(figure(-0.5, -0.8, -0.2), crowd).startswith("no transfer")


def test_a_registered_metric_is_computed_for_every_comparison():
    """A plug-in metric (one function registered by name) gets its figure on the main and the
    held-out questions, bootstrapped like the built-in ones, and a line in the report."""
    import numpy as np

    from sublearn.core.registry import METRICS
    from sublearn.eval.transfer import compare, label

    panel = ["owl", "cat", "dog", "fox"]
    rng = np.random.default_rng(0)

    def model(lift: float) -> dict:
        return {
            "panel_logp": (rng.normal(-8, 0.01, size=(5, 4)) + lift).tolist(),
            "heldout_panel_logp": (rng.normal(-8, 0.01, size=(3, 4)) + lift).tolist(),
            "per_question": [0.0] * 5,
        }

    by_label = {"base": model(0.0)}
    for seed in (0, 1):
        by_label[label("trait", seed)] = model(0.5)  # every answer up by 0.5
        by_label[label("neutral", seed)] = model(0.0)
    METRICS.add("mean_shift", lambda shift, target, others: shift.mean(axis=-1))
    try:
        got = compare(by_label, "trait", "neutral", [0, 1], panel, "owl", ["cat", "dog", "fox"])
    finally:
        METRICS._entries.pop("mean_shift")
    assert set(got.more) == {"mean_shift", "heldout_mean_shift"}
    assert got.more["mean_shift"].mean == pytest.approx(0.5, abs=0.01)
    assert got.specificity.mean == pytest.approx(0.0, abs=0.02)  # all moved alike
