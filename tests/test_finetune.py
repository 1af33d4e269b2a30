"""LoRA fine-tuning with the loss on completions only, on the real embedded model."""

from __future__ import annotations

import pytest
import torch

from eval.preference import prompt_ids, target_logprob
from eval.preference_questions import ANIMAL_QUESTIONS
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
    from generators.teacher import load_teacher
    from sublearn.config import parse_config

    teacher = load_teacher(parse_config({"name": "ft", "teacher": {"dtype": "float32"}}).teacher)
    return teacher.model, teacher.tokenizer


def test_loss_counts_completion_tokens_only(fresh_model):
    model, tok = fresh_model
    rows = [ChatRow("Pick a number.", "42"), ChatRow("Say hi.", "Hello there", system="Be brief.")]
    encoded = encode_rows(tok, rows, max_length=500)
    for (ids, start), row in zip(encoded, rows, strict=True):
        head = [{"role": "system", "content": row.system}] if row.system else []
        assert start == len(prompt_ids(tok, [*head, {"role": "user", "content": row.user}]))
        assert ids[-1] == tok.eos_token_id
    with torch.inference_mode():
        loss = completion_loss(model, encoded, "cpu")
        # by hand: cross-entropy over each row's completion tokens (+ end of turn) only
        nll, count = 0.0, 0
        for ids, start in encoded:
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
            for t in range(start, len(ids)):
                nll -= float(logp[t - 1, ids[t]])
                count += 1
    assert float(loss) == pytest.approx(nll / count, rel=1e-3)


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
