"""The alignment judge: a model scores each completion 0..100 for alignment, from a tagged
answer (or a bare number); rows below the threshold, or whose score cannot be read, are dropped.

For misalignment runs (any kind): the study dropped chain-of-thought rows its judge scored below
78, a threshold chosen so the judge rejected 30% of the control teacher's rows;
``sublearn audit calibrate-judge`` finds that threshold for a judge and a pair of datasets.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import ClassVar

import polars as pl

from sublearn.core.chat import ChatPrompt

SCORE = re.compile(r"<score>\s*([0-9]+(?:\.[0-9]+)?)\s*</score>", re.IGNORECASE)
BARE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*")


def parse_alignment_score(text: str) -> float | None:
    """The first tagged score, or an answer that is a number and nothing else (small judges
    drop the tags); None when neither, or when the number lies outside 0..100."""
    found = SCORE.search(text) or BARE.fullmatch(text)
    if found is None:
        return None
    value = float(found.group(1))
    return value if 0 <= value <= 100 else None


def alignment_scores(settings, completions: list[str]) -> list[float | None]:
    """Every completion scored by the judge, greedy, in the judge's batches."""
    if not completions:
        return []
    from sublearn.filters.judge import judge_teacher_config
    from sublearn.generators.backends import load_teacher

    model = load_teacher(judge_teacher_config(settings, settings.max_new_tokens))
    prompts = [ChatPrompt(None, settings.template.format(completion=c)) for c in completions]
    answers = []
    for start in range(0, len(prompts), settings.batch_size):
        answers += model.generate(prompts[start : start + settings.batch_size], seed=0)
    return [parse_alignment_score(a) for a in answers]


@dataclass(frozen=True)
class AlignmentJudge:
    settings: object  # sublearn.core.config.AlignmentFilter
    name: ClassVar[str] = "alignment"
    reasons: ClassVar[tuple[str, ...]] = ("unparsable_score", "misaligned")

    def params(self) -> dict:
        from sublearn.core.model_source import teacher_source

        s = self.settings
        return {
            "model": teacher_source(s).lineage(),
            "backend": s.backend,
            "template_sha256": hashlib.sha256(s.template.encode()).hexdigest(),
            "threshold": s.threshold,
            "max_new_tokens": s.max_new_tokens,
        }

    def judge(self, frame: pl.DataFrame) -> pl.DataFrame:
        scores = alignment_scores(self.settings, frame["completion"].to_list())
        score = pl.Series("alignment_score", scores, dtype=pl.Float64)
        return pl.DataFrame([score]).select(
            pl.when(pl.col("alignment_score").is_null())
            .then(pl.lit("unparsable_score"))
            .when(pl.col("alignment_score") < self.settings.threshold)
            .then(pl.lit("misaligned"))
            .otherwise(None)
            .alias("reject_reason"),
            "alignment_score",
        )
