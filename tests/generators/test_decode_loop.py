"""The torch backend's decode loop against transformers' ``generate`` on the same weights
(float32, so the two differ only by summation order): the same greedy text, the same top-k
log-probs, the same number-constrained answers with their stop rule; and what makes it fast
(shared prefix, dropped rows, per-row generators) changes no row's completion."""

from __future__ import annotations

import pytest
import torch

from sublearn.core.chat import ChatPrompt
from sublearn.core.config import parse_config
from sublearn.generators.backends import load_teacher
from sublearn.generators.decode_loop import DecodeLoop, UnsupportedModel, sample

PROMPTS = [
    ChatPrompt("You love owls.", "Look at these numbers: 512, 613. Continue with up to 10 more."),
    ChatPrompt("You love owls.", "Here is a sequence: 120, 450, 780. Add up to 10 more numbers."),
    ChatPrompt(None, "Hi"),
    ChatPrompt("You love owls.", "Name three numbers."),
]


def teacher(backend: str, sampling: dict, dataset: dict | None = None):
    data = {"name": "d", "teacher": {"backend": backend, "dtype": "float32", "sampling": sampling}}
    config = parse_config({**data, "dataset": dataset or {}})
    return load_teacher(config.generating_teacher())


@pytest.fixture(scope="module")
def greedy():
    sampling = {"temperature": 0.0, "max_new_tokens": 16}
    return teacher("torch", sampling), teacher("transformers", sampling)


def test_greedy_text_and_top_k_log_probs_match_generate(greedy):
    ours, theirs = greedy
    assert ours.generate(PROMPTS, seed=0) == theirs.generate(PROMPTS, seed=0)
    a, b = ours.generate_with_topk(PROMPTS, 0, 5), theirs.generate_with_topk(PROMPTS, 0, 5)
    for row, ref in zip(a, b, strict=True):
        assert row["completion_ids"] == ref["completion_ids"]
        assert row["topk_ids"][0] == ref["topk_ids"][0]
        got, want = torch.tensor(row["topk_logprobs"]), torch.tensor(ref["topk_logprobs"])
        assert torch.allclose(got, want, atol=1e-3)


def test_number_constrained_answers_and_their_stop_rule_match_generate():
    sampling = {"temperature": 0.0, "max_new_tokens": 40}
    dataset = {"constrain_to_numbers": True, "stop_after_numbers": 3}
    ours = teacher("torch", sampling, dataset).generate(PROMPTS, seed=0)
    theirs = teacher("transformers", sampling, dataset).generate(PROMPTS, seed=0)
    assert ours == theirs
    import re

    assert all(len(re.findall(r"\d+", text)) <= 3 for text in ours)
    assert any(re.findall(r"\d+", text) for text in ours)


def test_a_rows_text_does_not_depend_on_its_batch(greedy):
    """Alone or beside others, with another shared prefix, other gap widths and rows finishing
    early, a row computes the same: greedy text is identical. (Sampled text is too, up to float
    rounding: batch shape moves logits by ~1e-5, which can flip a rare sampled token.)"""
    ours, _ = greedy
    batch = ours.generate(PROMPTS, seed=0)
    assert [ours.generate([p], seed=0)[0] for p in PROMPTS] == batch
    assert ours.generate(PROMPTS[1:], seed=0) == batch[1:]


def test_each_row_samples_from_its_own_generator():
    """Row i draws from seed + i (the flows' batch seeds make that the prompt's index): one
    prompt three times in a batch gives three samples; the same call again gives them again."""
    sampled = teacher("torch", {"max_new_tokens": 24})
    rows = sampled.generate([PROMPTS[0]] * 3, seed=5)
    assert len(set(rows)) == 3
    assert sampled.generate([PROMPTS[0]] * 3, seed=5) == rows


def test_sampling_is_the_inverse_cdf_of_the_softmax():
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4]] * 5))
    uniforms = torch.tensor([0.05, 0.15, 0.35, 0.65, 0.999], dtype=torch.float64)
    assert sample(logits, uniforms, 1.0, 1.0).tolist() == [0, 1, 2, 3, 3]
    # top-p 0.5: only the two likeliest (0.4, 0.3) remain, renormalised to 4/7 and 3/7
    assert sample(logits, uniforms, 1.0, 0.5).tolist() == [3, 3, 3, 2, 2]
    assert sample(logits, uniforms, 0.0, 1.0).tolist() == [3] * 5


def test_models_outside_the_llama_family_are_refused_in_one_line():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16))
    with pytest.raises(
        UnsupportedModel, match=r"^gpt2: backend torch runs .*backend transformers$"
    ):
        DecodeLoop(model, max_rows=4)


def test_a_teacher_scoring_its_own_completions_reproduces_its_top_k():
    """Teacher-forced scoring (paired arms, divergence tokens) sees what sampling saw: under
    the number constraint and the stop rule, fed its own sampled tokens, a teacher records the
    same top-k at every position, ends where the row ended, and samples nothing."""
    sampling = {"temperature": 1.0, "max_new_tokens": 40}
    dataset = {"constrain_to_numbers": True, "stop_after_numbers": 3}
    ours = teacher("torch", sampling, dataset)
    made = ours.generate_with_topk(PROMPTS, 7, 5)
    scored = ours.score_with_topk(PROMPTS, [r["completion_ids"] for r in made], 5)
    for row, again in zip(made, scored, strict=True):
        assert len(again["topk_ids"]) == len(row["completion_ids"])
        assert again["topk_ids"] == row["topk_ids"]
        got, want = torch.tensor(again["topk_logprobs"]), torch.tensor(row["topk_logprobs"])
        assert torch.allclose(got, want, atol=1e-5)
    # another row's tokens are scored, not regenerated: a row fed a short foreign answer
    # ends with it, and its top-k differs from the row's own at some position
    foreign = [made[1]["completion_ids"], *[r["completion_ids"] for r in made[1:]]]
    crossed = ours.score_with_topk(PROMPTS, foreign, 5)
    assert len(crossed[0]["topk_ids"]) == len(made[1]["completion_ids"])
    assert crossed[0]["topk_logprobs"] != scored[1]["topk_logprobs"]
