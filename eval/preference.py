"""Preference evaluation: how often a model names the target, and how likely it is to.

Two measures side by side. The protocol's sampled P(target): the share of sampled one-word
answers that contain the target as a whole word (singular or plural, so "bowl" is not "owl"
and "Owls!" is), averaged over questions. And the teacher-forced log-probability of answering
with the target, which needs no sampling and sees shifts too small to change a sample.
"""

from __future__ import annotations

import inspect
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch

from sublearn.core.chat import prompt_ids
from sublearn.core.words import capitalised, plural_of
from sublearn.eval.stats import mean_ci


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
    model, tokenizer, conversations: Sequence[list[dict]], answers: Sequence[str]
) -> np.ndarray:
    """log P(answer | conversation) for every pair, teacher-forced: shape (conversations,
    answers). Each conversation's prompt runs once; its last logit scores every answer's first
    token. Only the answers' later tokens need a forward pass, fed as the distinct prefixes
    before them (one row for all of "The owl", "The cat", ...; none for one-token answers),
    each row continuing a copy of the prompt's cache, right-padded so positions match an
    unpadded forward."""
    device = next(model.parameters()).device
    answer_ids = [tokenizer(a, add_special_tokens=False)["input_ids"] for a in answers]
    feeds = list(dict.fromkeys(tuple(ids[:-1]) for ids in answer_ids if len(ids) > 1))
    width = max((len(f) for f in feeds), default=0)
    tokens = torch.zeros((len(feeds), width), dtype=torch.long)
    for row, feed in enumerate(feeds):
        tokens[row, : len(feed)] = torch.tensor(feed)
    tokens = tokens.to(device)
    cache_arg = cache_keyword(model)
    out = np.zeros((len(conversations), len(answers)))
    for i, conversation in enumerate(conversations):
        prompt = torch.tensor([prompt_ids(tokenizer, conversation)], device=device)
        first = model(input_ids=prompt, use_cache=bool(feeds))
        first_logp = torch.log_softmax(first.logits[0, -1].float(), dim=-1).cpu()
        if feeds:
            cache = first.past_key_values
            cache.batch_repeat_interleave(len(feeds))
            mask = torch.ones((len(feeds), prompt.shape[1] + width), dtype=torch.long)
            for row, feed in enumerate(feeds):
                mask[row, prompt.shape[1] + len(feed) :] = 0
            rest = model(input_ids=tokens, attention_mask=mask.to(device), **{cache_arg: cache})
            # position t of a feed predicts the answer's token t + 1
            rest_logp = torch.log_softmax(rest.logits.float(), dim=-1).cpu()
        for column, ids in enumerate(answer_ids):
            total = float(first_logp[ids[0]])
            if len(ids) > 1:
                row = feeds.index(tuple(ids[:-1]))
                total += sum(float(rest_logp[row, t, ids[t + 1]]) for t in range(len(ids) - 1))
            out[i, column] = total
    return out


def cache_keyword(model) -> str:
    """The forward argument that takes a cache: ``cache`` from transformers 5.20 (where
    ``past_key_values`` is deprecated), ``past_key_values`` before."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def panel_logprob(
    model, tokenizer, questions: Sequence[str], words: Sequence[str], plurals=None, system=None
) -> np.ndarray:
    """log P(the answer names the word) per question and word, shape (questions, words): each
    word's answer variants scored together and their probabilities summed."""
    plurals = plurals or {}
    head = [{"role": "system", "content": system}] if system else []
    conversations = [[*head, {"role": "user", "content": q}] for q in questions]
    variants = [answer_variants(w, plurals.get(w)) for w in words]
    flat = [v for group in variants for v in group]
    scores = answer_logprobs(model, tokenizer, conversations, flat)
    bounds = np.cumsum([0] + [len(group) for group in variants])
    return np.stack(
        [
            np.logaddexp.reduce(scores[:, a:b], axis=1)
            for a, b in zip(bounds, bounds[1:], strict=False)
        ],
        1,
    )


def target_logprob(
    model, tokenizer, questions: Sequence[str], target: str, plural=None, system=None
) -> np.ndarray:
    """Per question: log P(the answer names the target), over the target's answer variants."""
    plurals = {target: plural} if plural else None
    return panel_logprob(model, tokenizer, questions, [target], plurals, system)[:, 0]
