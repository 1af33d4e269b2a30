"""Carrying a teacher's top-k targets into another model's vocabulary, so the cross-model
control learns the same targets as the students that share the teacher's start: only the
start differs. It works where every completion token is one token in both vocabularies
(numbers: single digits, separators, the end token, as SmolLM2 and Gemma 3 both write them);
a row with a token the other vocabulary splits is left out and counted."""

from __future__ import annotations

import math
from collections.abc import Iterable

import polars as pl


def token_map(source, target, ids: Iterable[int]) -> dict[int, int]:
    """Each of ``ids`` (``source`` tokenizer's) whose text is exactly one ``target`` token,
    to that token; the end token to the target's end token. Ids without one are left out."""
    out = {}
    for i in set(ids):
        if i == source.eos_token_id:
            out[i] = target.eos_token_id
            continue
        text = source.decode([i])
        got = target(text, add_special_tokens=False)["input_ids"]
        if len(got) == 1 and target.decode(got) == text:
            out[i] = got[0]
    return out


def frame_token_ids(frame: pl.DataFrame) -> set[int]:
    """Every token id a top-k frame uses: its completions' and their candidates'."""
    ids = set(frame["completion_ids"].explode().drop_nulls().to_list())
    return ids | set(frame["topk_ids"].explode().explode().drop_nulls().to_list())


def translate_topk(frame: pl.DataFrame, mapping: dict[int, int]) -> tuple[pl.DataFrame, dict]:
    """``frame``'s rows in the target's ids: completion tokens and top-k candidates mapped;
    a candidate without a counterpart is dropped with its log-probability (the rest
    renormalise at training). A row whose completion has a token without one, or a position
    left with no candidate, is dropped. Also the counts: rows dropped, candidates dropped and
    the teacher probability they held (mean per position)."""
    keep, completions, targets, logprobs = [], [], [], []
    candidates = dropped_candidates = 0
    lost_mass: list[float] = []
    for r, (ids, tops, lps) in enumerate(
        zip(frame["completion_ids"], frame["topk_ids"], frame["topk_logprobs"], strict=True)
    ):
        ids, tops, lps = ids.to_list(), tops.to_list(), lps.to_list()
        if any(i not in mapping for i in ids):
            continue
        row_targets, row_logprobs, masses = [], [], []
        for top, lp in zip(tops, lps, strict=True):
            kept = [(mapping[t], p) for t, p in zip(top, lp, strict=True) if t in mapping]
            candidates += len(top)
            dropped_candidates += len(top) - len(kept)
            masses.append(_mass(lp) - _mass([p for _, p in kept]))
            row_targets.append([t for t, _ in kept])
            row_logprobs.append([p for _, p in kept])
        if not all(row_targets):
            continue
        keep.append(r)
        completions.append([mapping[i] for i in ids])
        targets.append(row_targets)
        logprobs.append(row_logprobs)
        lost_mass += masses
    out = frame[keep].with_columns(
        pl.Series("completion_ids", completions, dtype=pl.List(pl.Int64)),
        pl.Series("topk_ids", targets, dtype=pl.List(pl.List(pl.Int64))),
        pl.Series("topk_logprobs", logprobs, dtype=pl.List(pl.List(pl.Float64))),
    )
    stats = {
        "rows": frame.height,
        "rows_dropped": frame.height - len(keep),
        "candidates": candidates,
        "candidates_dropped": dropped_candidates,
        "mass_dropped": sum(lost_mass) / len(lost_mass) if lost_mass else 0.0,
    }
    return out, stats


def _mass(logprobs: list[float]) -> float:
    return sum(math.exp(p) for p in logprobs)
