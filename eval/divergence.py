"""Divergence tokens (Schrodi et al. 2025): the completion positions where two teachers, fed the
same tokens, would choose differently. Transfer is reported to ride on these rare positions;
training on them alone keeps it, masking them removes it. Pure functions of the two teachers'
top-k at the same tokens."""

from __future__ import annotations

from collections.abc import Sequence


def divergent_positions(
    trait_topk: Sequence[Sequence[Sequence[int]]], other_topk: Sequence[Sequence[Sequence[int]]]
) -> list[list[bool]]:
    """Per row, per completion token: do the two teachers' top choices differ?"""
    masks = []
    for row, (mine, theirs) in enumerate(zip(trait_topk, other_topk, strict=True)):
        if len(mine) != len(theirs):
            raise ValueError(f"row {row}: {len(mine)} trait positions, {len(theirs)} other")
        masks.append([a[0] != b[0] for a, b in zip(mine, theirs, strict=True)])
    return masks


def divergence_summary(masks: Sequence[Sequence[bool]]) -> dict:
    """How many positions diverge: in all, at the first token (where an answer's form is
    chosen) and after it, and how many rows hold at least one."""
    positions = sum(len(m) for m in masks)
    divergent = sum(sum(m) for m in masks)
    first = [m[0] for m in masks if m]
    later = sum(len(m) - 1 for m in masks if m)
    return {
        "rows": len(masks),
        "rows_with_divergence": sum(any(m) for m in masks),
        "positions": positions,
        "divergent": divergent,
        "share": divergent / positions if positions else 0.0,
        "first_token_share": sum(first) / len(first) if first else 0.0,
        "later_share": (divergent - sum(first)) / later if later else 0.0,
    }
