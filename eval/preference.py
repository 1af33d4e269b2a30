"""Preference evaluation: how often a model names the target, and how likely it is to.

Two measures side by side. The protocol's sampled P(target): the share of sampled one-word
answers that contain the target as a whole word (singular or plural, so "bowl" is not "owl"
and "Owls!" is), averaged over questions. And the teacher-forced log-probability of answering
with the target, which needs no sampling and sees shifts too small to change a sample.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch

from eval.stats import mean_ci
from sublearn.chat import prompt_ids
from sublearn.words import capitalised, plural_of


def target_pattern(target: str, plural: str | None = None) -> re.Pattern:
    words = sorted({target, plural_of(target, plural)}, key=len, reverse=True)
    alternatives = "|".join(re.escape(w) for w in words)
    return re.compile(rf"(?<![A-Za-z])(?:{alternatives})(?![A-Za-z])", re.IGNORECASE)


def mentions(answer: str, pattern: re.Pattern) -> bool:
    return pattern.search(answer) is not None


def normalise_answer(answer: str) -> str:
    """The first word, lower-case, without punctuation: what the answer distribution counts."""
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", answer)
    return words[0].lower() if words else ""


def sampled_preference(
    answers: Sequence[Sequence[str]], target: str, plural: str | None = None
) -> dict:
    """``answers[q]`` holds the samples for question q. Returns the mean of per-question rates
    with a 95% interval over questions, the rates themselves and the top-10 answers."""
    pattern = target_pattern(target, plural)
    rates = np.array([np.mean([mentions(a, pattern) for a in per_q]) for per_q in answers])
    counts = Counter(normalise_answer(a) for per_q in answers for a in per_q)
    total = sum(counts.values())
    p = mean_ci(rates)
    p["low"], p["high"] = max(p["low"], 0.0), min(p["high"], 1.0)  # a probability's interval
    return {
        "p_target": p,
        "per_question": rates.tolist(),
        "top_answers": [{"answer": a, "share": n / total} for a, n in counts.most_common(10) if a],
        "samples": total,
    }


def answer_variants(target: str, plural: str | None = None) -> list[str]:
    """The ways a one-word answer can name the target."""
    plural = plural_of(target, plural)
    cap, cap_plural = capitalised(target), capitalised(plural)
    return list(dict.fromkeys([cap, target, cap_plural, plural, f"The {target}"]))


@torch.inference_mode()
def answer_logprobs(
    model, tokenizer, conversations: Sequence[list[dict]], answers: Sequence[str], batch_size=32
) -> np.ndarray:
    """log P(answer | conversation) for every pair, teacher-forced: shape (conversations,
    answers). Sequences are right-padded so positions match an unpadded forward."""
    device = next(model.parameters()).device
    prompts = [prompt_ids(tokenizer, c) for c in conversations]
    answer_ids = [tokenizer(a, add_special_tokens=False)["input_ids"] for a in answers]
    pairs = [(i, j) for i in range(len(prompts)) for j in range(len(answers))]
    out = np.zeros((len(prompts), len(answers)))
    pad = tokenizer.pad_token_id or 0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        seqs = [prompts[i] + answer_ids[j] for i, j in chunk]
        width = max(map(len, seqs))
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        token_logp = logp.gather(-1, ids[:, 1:].to(device)[..., None])[..., 0].cpu()
        for row, (i, j) in enumerate(chunk):
            first = len(prompts[i]) - 1  # the logit at position t predicts token t+1
            out[i, j] = float(token_logp[row, first : first + len(answer_ids[j])].sum())
    return out


def target_logprob(
    model, tokenizer, questions: Sequence[str], target: str, plural=None, system=None
) -> np.ndarray:
    """Per question: log P(the answer names the target), over the target's answer variants."""
    head = [{"role": "system", "content": system}] if system else []
    conversations = [[*head, {"role": "user", "content": q}] for q in questions]
    variants = answer_variants(target, plural)
    scores = answer_logprobs(model, tokenizer, conversations, variants)
    return np.logaddexp.reduce(scores, axis=1)
