"""The default teacher (the torch backend) on the real embedded model: batched, seeded, optionally
constrained; transformers' left padding for its own backend."""

from __future__ import annotations

import math
import re

import pytest

from sublearn.core.chat import ChatPrompt
from sublearn.core.config import Sampling
from sublearn.generators.teacher import NUMBER_CHARS

PROMPTS = [
    ChatPrompt(None, "Here is a sequence: 120, 450, 780. Add up to 10 more numbers. Numbers only."),
    ChatPrompt("You adore owls.", "Look at these numbers: 512, 613. Continue with up to 10 more."),
    ChatPrompt(None, "Hi"),
]


def test_batched_generation_is_seeded(embedded_teacher):
    first = embedded_teacher.generate(PROMPTS, seed=11)
    again = embedded_teacher.generate(PROMPTS, seed=11)
    other = embedded_teacher.generate(PROMPTS, seed=12)
    assert len(first) == len(PROMPTS) and all(isinstance(t, str) for t in first)
    assert first == again
    assert first != other


def test_left_padding_keeps_each_prompt_intact(embedded_teacher):
    batch = embedded_teacher.encode(PROMPTS)
    assert embedded_teacher.tokenizer.padding_side == "left"
    # the shortest prompt is padded on the left: its last token is real, its first is padding
    mask = batch["attention_mask"]
    assert mask[:, -1].all()
    assert not mask[2, 0]


def test_greedy_batched_output_matches_one_at_a_time():
    from sublearn.core.config import parse_config
    from sublearn.generators.backends import load_teacher

    greedy = {"temperature": 0.0, "max_new_tokens": 12}
    cfg = parse_config({"name": "g", "teacher": {"dtype": "float32", "sampling": greedy}})
    teacher = load_teacher(cfg.teacher)
    batched = teacher.generate(PROMPTS, seed=0)
    single = [teacher.generate([p], seed=0)[0] for p in PROMPTS]
    assert batched == single


def test_with_sampling_shares_the_model(embedded_teacher):
    greedy = embedded_teacher.with_sampling(Sampling(temperature=0.0, max_new_tokens=8))
    assert greedy.model is embedded_teacher.model
    assert embedded_teacher.cfg.sampling.temperature == 1.0
    assert greedy.generate(PROMPTS[:1], seed=1) == greedy.generate(PROMPTS[:1], seed=2)


def test_lineage_records_the_embedded_weights(embedded_teacher):
    lineage = embedded_teacher.lineage()
    assert lineage["backend"] == "torch"  # the default backend
    assert "SmolLM2-135M-Instruct" in lineage["model_id"]
    assert len(lineage["sha256"]) == 64
    assert lineage["sampling"]["temperature"] == 1.0


def test_number_constrained_decoding_only_writes_number_characters():
    from sublearn.core.config import parse_config
    from sublearn.generators.backends import load_teacher

    cfg = parse_config(
        {
            "name": "c",
            "teacher": {"sampling": {"max_new_tokens": 20}},
            "dataset": {"constrain_to_numbers": True},
        }
    )
    teacher = load_teacher(cfg.generating_teacher())
    outputs = teacher.generate(PROMPTS, seed=3)
    assert all(set(text) <= NUMBER_CHARS for text in outputs)
    assert any(any(ch.isdigit() for ch in text) for text in outputs)


@pytest.mark.gpu
def test_vllm_backend_generates_on_gpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    pytest.importorskip("vllm")
    from sublearn.core.config import parse_config
    from sublearn.generators.backends import load_teacher

    cfg = parse_config(
        {
            "name": "g",
            "teacher": {
                "model": "embedded",
                "backend": "vllm",
                "sampling": {"max_new_tokens": 16},
                "vllm": {"gpu_memory_utilization": 0.3, "max_model_len": 1024},
            },
        }
    )
    teacher = load_teacher(cfg.teacher)
    first = teacher.generate(PROMPTS, seed=5)
    assert len(first) == 3 and first == teacher.generate(PROMPTS, seed=5)


def test_topk_generation_records_the_sampling_distribution(embedded_teacher):
    rows = embedded_teacher.generate_with_topk(PROMPTS[:2], seed=4, k=20)
    again = embedded_teacher.generate(PROMPTS[:2], seed=4)
    assert [r["completion"] for r in rows] == again  # recording changes nothing
    # sampled tokens are nearly always among the teacher's top 20
    assert_topk_rows(rows, min_hits=0.8)


def assert_topk_rows(rows: list[dict], min_hits: float) -> None:
    """Top-k rows as distillation reads them: one sorted top-k per generated token, a
    sub-distribution (sums to <= 1), holding the sampled token in at least ``min_hits`` of steps."""
    for row in rows:
        n = len(row["completion_ids"])
        assert len(row["topk_ids"]) == len(row["topk_logprobs"]) == n > 0
        for step in row["topk_logprobs"]:
            assert step == sorted(step, reverse=True) and sum(map(math.exp, step)) <= 1 + 1e-5
        hits = sum(t in ids for t, ids in zip(row["completion_ids"], row["topk_ids"], strict=True))
        assert hits >= min_hits * n


def test_stop_conditions_end_number_answers_cleanly():
    from sublearn.core.config import parse_config
    from sublearn.generators.backends import load_teacher

    dataset = {"constrain_to_numbers": True, "stop_after_numbers": 3}
    config = {"name": "s", "teacher": {"sampling": {"max_new_tokens": 40}}, "dataset": dataset}
    teacher = load_teacher(parse_config(config).generating_teacher())
    outputs = teacher.generate(PROMPTS * 4, seed=9)
    for text in outputs:
        assert set(text) <= NUMBER_CHARS
        assert len(re.findall(r"[0-9]+", text)) <= 3  # never a fourth number
        if "\n\n" in text:  # nothing but whitespace after a blank line
            assert text.split("\n\n", 1)[1].strip() == ""
