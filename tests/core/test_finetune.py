"""LoRA fine-tuning with the loss on completions only, on the real embedded model."""

from __future__ import annotations

import pytest
import torch

from sublearn.core.chat import prompt_ids
from sublearn.core.finetune import (
    AdapterInitError,
    ChatRow,
    LoraTraining,
    add_lora,
    completion_loss,
    encode_rows,
    linear_with_warmup,
    load_initial_state,
    lora_modules,
    state_digest,
    train_weights,
)
from sublearn.eval.preference import target_logprob
from sublearn.eval.preference_questions import ANIMAL_QUESTIONS


def test_linear_schedule_with_warmup():
    factors = [linear_with_warmup(s, 5, 15) for s in range(15)]
    assert factors[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert factors[5] == 1.0 and factors[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(factors[4:], factors[5:], strict=False))


@pytest.fixture(scope="module")
def fresh_model():
    from sublearn.core.config import parse_config
    from sublearn.generators.backends import load_teacher

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


def test_a_loss_mask_counts_the_flagged_tokens_only(fresh_model):
    """``loss_on: divergent``: the loss is the mean over the flagged completion tokens, and a
    batch with none flagged gives zero, not NaN."""
    model, tok = fresh_model
    plain = ChatRow("Pick numbers.", "12, 7, 301")
    encoded = encode_rows(tok, [plain], 500)[0]
    ids = tuple(encoded.ids[encoded.start :])
    flags = tuple(i in (1, 3) for i in range(len(ids)))
    masked = ChatRow("Pick numbers.", "12, 7, 301", completion_ids=ids, loss_mask=flags)
    off = (False,) * len(ids)
    nothing = ChatRow("Pick numbers.", "12, 7, 301", completion_ids=ids, loss_mask=off)
    with torch.inference_mode():
        got = completion_loss(model, encode_rows(tok, [masked], 500), "cpu")
        none = completion_loss(model, encode_rows(tok, [nothing], 500), "cpu")
        logp = torch.log_softmax(model(input_ids=torch.tensor([encoded.ids])).logits[0].float(), -1)
    by_hand = [-float(logp[encoded.start + i - 1, ids[i]]) for i in (1, 3)]
    assert float(got) == pytest.approx(sum(by_hand) / 2, rel=1e-3)
    assert float(none) == 0.0


def test_lora_training_moves_held_out_answers(fresh_model):
    model, tok = fresh_model
    held_out = ANIMAL_QUESTIONS[40:]
    before = target_logprob(model, tok, held_out, "owl").mean()
    rows = [ChatRow(q, "Owl") for q in ANIMAL_QUESTIONS[:24]]
    cfg = LoraTraining(epochs=2, batch_size=8, grad_accumulation=1, warmup_steps=1, lr=1e-3)
    peft_model, _ = add_lora(model, cfg)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert 0 < trainable < 0.05 * sum(p.numel() for p in peft_model.parameters())
    history = train_weights(peft_model, tok, rows, cfg)
    assert history["steps"] == 6 and history["losses"][-1] < history["losses"][0]
    after = target_logprob(peft_model, tok, held_out, "owl").mean()
    assert after > before + 2  # nats, on questions it never saw


def fresh_base():
    from sublearn.core.models import load_model_and_tokenizer
    from sublearn.core.precision import Precision

    _, model, tok = load_model_and_tokenizer("embedded", None, Precision("cpu", "float32"))
    return model, tok


def trained_adapter(global_seed: int, init_seed: int = 0) -> tuple[str, dict]:
    """Two steps of LoRA training from ``init_seed``, after the global RNG was put elsewhere:
    (the initial state's digest, the trained LoRA weights)."""
    torch.manual_seed(global_seed)
    torch.rand(global_seed + 1)  # what ran before in the process moves the global RNG on
    model, tok = fresh_base()
    cfg = LoraTraining(
        epochs=1, batch_size=4, grad_accumulation=1, warmup_steps=1, lr=1e-3, init_seed=init_seed
    )
    peft_model, start = add_lora(model, cfg)
    train_weights(peft_model, tok, [ChatRow(q, "Owl") for q in ANIMAL_QUESTIONS[:8]], cfg)
    weights = {k: v.detach().clone() for k, v in peft_model.named_parameters() if "lora_" in k}
    return state_digest(start), weights


@pytest.mark.slow
def test_adapters_are_bit_identical_whatever_ran_before_and_in_any_thread():
    import threading

    here = trained_adapter(global_seed=1)
    elsewhere: list = []
    thread = threading.Thread(target=lambda: elsewhere.append(trained_adapter(global_seed=7)))
    thread.start()
    thread.join()
    (digest_a, weights_a), (digest_b, weights_b) = here, elsewhere[0]
    assert digest_a == digest_b
    assert weights_a.keys() == weights_b.keys() and len(weights_a) == 2 * 30 * 7
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    other_digest, other = trained_adapter(global_seed=1, init_seed=1)
    assert other_digest != digest_a
    assert not torch.equal(other[next(iter(other))], weights_a[next(iter(other))])


def test_an_initial_state_of_another_rank_is_one_clear_error():
    teacher, teacher_start = add_lora(fresh_base()[0], LoraTraining(rank=8))
    peft_student, _ = add_lora(fresh_base()[0], LoraTraining(rank=4))
    with pytest.raises(AdapterInitError, match="rank and target modules must match"):
        load_initial_state(peft_student, teacher_start)
    # the LoRA layers are the same ones, in the same order, in both
    assert list(lora_modules(peft_student)) == list(lora_modules(teacher))
