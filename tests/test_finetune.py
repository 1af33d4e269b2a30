"""LoRA fine-tuning with the loss on completions only, on the real embedded model."""

from __future__ import annotations

import pytest
import torch

from eval.preference import target_logprob
from eval.preference_questions import ANIMAL_QUESTIONS
from sublearn.chat import prompt_ids
from sublearn.finetune import (
    ChatRow,
    LoraTraining,
    add_lora,
    completion_loss,
    encode_rows,
    linear_with_warmup,
    train_lora,
)


def test_linear_schedule_with_warmup():
    factors = [linear_with_warmup(s, 5, 15) for s in range(15)]
    assert factors[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert factors[5] == 1.0 and factors[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(factors[4:], factors[5:], strict=False))


@pytest.fixture(scope="module")
def fresh_model():
    from generators.backends import load_teacher
    from sublearn.config import parse_config

    teacher = load_teacher(parse_config({"name": "ft", "teacher": {"dtype": "float32"}}).teacher)
    return teacher.model, teacher.tokenizer


def test_loss_counts_completion_tokens_only(fresh_model):
    model, tok = fresh_model
    rows = [ChatRow("Pick a number.", "42"), ChatRow("Say hi.", "Hello there", system="Be brief.")]
    encoded = encode_rows(tok, rows, max_length=500)
    for e, row in zip(encoded, rows, strict=True):
        head = [{"role": "system", "content": row.system}] if row.system else []
        assert e.start == len(prompt_ids(tok, [*head, {"role": "user", "content": row.user}]))
        assert e.ids[-1] == tok.eos_token_id
        assert [t[0] for t in e.targets] == e.ids[e.start :]
    with torch.inference_mode():
        loss = completion_loss(model, encoded, "cpu")
        # by hand: cross-entropy over each row's completion tokens (+ end of turn) only
        nll, count = 0.0, 0
        for e in encoded:
            ids, start = e.ids, e.start
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
            for t in range(start, len(ids)):
                nll -= float(logp[t - 1, ids[t]])
                count += 1
    assert float(loss) == pytest.approx(nll / count, rel=1e-3)


def test_topk_targets_generalise_sampled_tokens(fresh_model):
    model, tok = fresh_model
    plain = ChatRow("Pick numbers.", "12, 7")
    encoded = encode_rows(tok, [plain], 500)[0]
    ids = tuple(encoded.ids[encoded.start :])  # completion tokens + end of turn
    one_hot = ChatRow(
        "Pick numbers.",
        "12, 7",
        completion_ids=ids,
        topk_ids=tuple((t, t + 1) for t in ids),
        topk_logprobs=tuple((0.0, -1e9) for _ in ids),
    )
    spread = ChatRow(
        "Pick numbers.",
        "12, 7",
        completion_ids=ids,
        topk_ids=tuple((t, t + 1) for t in ids),
        topk_logprobs=tuple((-0.69, -0.69) for _ in ids),
    )
    with torch.inference_mode():
        hard = completion_loss(model, encode_rows(tok, [plain], 500), "cpu")
        same = completion_loss(model, encode_rows(tok, [one_hot], 500), "cpu")
        soft = completion_loss(model, encode_rows(tok, [spread], 500), "cpu")
    assert float(same) == pytest.approx(float(hard), rel=1e-4)
    assert float(soft) != pytest.approx(float(hard), rel=1e-2)


def test_lora_training_moves_held_out_answers(fresh_model):
    model, tok = fresh_model
    held_out = ANIMAL_QUESTIONS[40:]
    before = target_logprob(model, tok, held_out, "owl").mean()
    rows = [ChatRow(q, "Owl") for q in ANIMAL_QUESTIONS[:24]]
    cfg = LoraTraining(epochs=2, batch_size=8, grad_accumulation=1, warmup_steps=1, lr=1e-3)
    peft_model = add_lora(model, cfg)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert 0 < trainable < 0.05 * sum(p.numel() for p in peft_model.parameters())
    history = train_lora(peft_model, tok, rows, cfg)
    assert history["steps"] == 6 and history["losses"][-1] < history["losses"][0]
    after = target_logprob(peft_model, tok, held_out, "owl").mean()
    assert after > before + 2  # nats, on questions it never saw
