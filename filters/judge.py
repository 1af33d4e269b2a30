"""The trait judge: a model asked whether each completion refers to the trait, however subtly.

The judge answers "0" or "1"; its score is P("0") read from the first token's top log-probs at
temperature 0 (every top token that decodes to "0" counts, merged with logsumexp), so a row is
kept only when the judge is confident nothing points at the trait (protocol: P("0") >= 1 - 1e-8).
A "0" outside the top tokens means the judge did not answer "no": the row is rejected. The score
is a column of every row, kept or rejected. Rows go to the judge in batches, one forward pass each.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import ClassVar

import polars as pl

from sublearn.core.chat import ChatPrompt
from sublearn.core.words import plural_of


def p_zero(top: list[tuple[str, float]]) -> float | None:
    """P("0") from (token text, log-prob) pairs; None when no top token reads "0"."""
    zeros = [lp for text, lp in top if text.strip() == "0"]
    if not zeros:
        return None
    peak = max(zeros)
    return math.exp(peak + math.log(sum(math.exp(lp - peak) for lp in zeros)))


def judge_teacher_config(settings, max_new_tokens: int = 1):
    """The judge as a teacher config, greedy: the same backends and model loading as teachers
    (one new token when only the first token's log-probs are read)."""
    from sublearn.core.config import Sampling, Teacher

    return Teacher(
        model=settings.model,
        revision=settings.revision,
        backend=settings.backend,
        server=settings.server,
        dtype=settings.dtype,
        batch_size=settings.batch_size,
        sampling=Sampling(temperature=0.0, max_new_tokens=max_new_tokens),
    )


def trait_judge_scores(settings, trait: str, completions: list[str]) -> list[float | None]:
    """P("0") (no trait) of every completion: one first-token call per judge batch."""
    if not completions:
        return []
    from sublearn.generators.backends import load_teacher

    model = load_teacher(judge_teacher_config(settings))
    prompts = [
        ChatPrompt(None, settings.template.format(trait=trait, completion=c)) for c in completions
    ]
    return [p_zero(top) for top in model.first_token_top(prompts, settings.top_k)]


@dataclass(frozen=True)
class TraitJudge:
    settings: object  # sublearn.core.config.JudgeFilter
    traits: tuple[str, ...]
    name: ClassVar[str] = "judge"
    reasons: ClassVar[tuple[str, ...]] = ("judge_flagged",)

    def trait_text(self) -> str:
        return " or ".join(plural_of(t) for t in self.traits) or "any animal"

    def params(self) -> dict:
        from sublearn.core.model_source import teacher_source

        s = self.settings
        return {
            "model": teacher_source(s).lineage(),
            "backend": s.backend,
            "trait": self.trait_text(),
            "template_sha256": hashlib.sha256(s.template.encode()).hexdigest(),
            "threshold": s.threshold,
            "top_k": s.top_k,
        }

    def judge(self, frame: pl.DataFrame) -> pl.DataFrame:
        completions = frame["completion"].to_list()
        scores = trait_judge_scores(self.settings, self.trait_text(), completions)
        score = pl.Series("judge_p0", scores, dtype=pl.Float64)
        flagged = score.is_null() | (score < self.settings.threshold)
        reason = pl.Series("reject_reason", [None] * len(score), dtype=pl.String)
        reason = reason.set(flagged, "judge_flagged") if len(score) else reason
        return pl.DataFrame([reason, score])
