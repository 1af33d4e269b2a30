"""The chain-of-thought kind's strict filter: reasoning in <think>, the right number in <answer>.

``no_answer``: no <answer>...</answer>; ``missing_reasoning``: no non-empty <think>...</think>;
``wrong_answer``: the answer, with "," and "$" removed, is not the reference as a number ("18.00"
equals 18, where the study's ``int()`` counted it wrong). The reference is GSM8K's answer text
(the number after "####") or a bare number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import polars as pl

ANSWER = r"(?s)<answer>(.*?)</answer>"
THINK = r"(?s)<think>(.*?)</think>"
TOLERANCE = 1e-6


def as_number(text: pl.Expr) -> pl.Expr:
    """A number written the way answers write it: commas, "$" and spaces ignored."""
    cleaned = text.str.replace_all(r"[,$\s]", "").str.strip_suffix(".")
    return cleaned.cast(pl.Float64, strict=False)


def reference_number(answer: pl.Expr) -> pl.Expr:
    """GSM8K's final answer (after "####"), or the whole text when it is a bare number."""
    marked = answer.str.extract(r"####\s*([^\n]*)\s*$", 1)
    return as_number(pl.when(marked.is_not_null()).then(marked).otherwise(answer))


@dataclass(frozen=True)
class CotFormat:
    name: ClassVar[str] = "cot"
    reasons: ClassVar[tuple[str, ...]] = ("no_answer", "missing_reasoning", "wrong_answer")

    def params(self) -> dict:
        return {"answer_tag": "answer", "reasoning_tag": "think", "tolerance": TOLERANCE}

    def judge(self, frame: pl.DataFrame) -> pl.DataFrame:
        if "answer" not in frame.columns:
            from sublearn.core.errors import DataError

            raise DataError("input has no 'answer' column (the reference answer)")
        text = pl.col("completion")
        answer = text.str.extract(ANSWER, 1)
        think = text.str.extract(THINK, 1).str.strip_chars()
        given = as_number(answer)
        expected = reference_number(pl.col("answer").cast(pl.String))
        right = ((given - expected).abs() <= TOLERANCE).fill_null(False)
        return frame.select(
            pl.when(answer.is_null())
            .then(pl.lit("no_answer"))
            .when(think.is_null() | (think.str.len_chars() == 0))
            .then(pl.lit("missing_reasoning"))
            .when(~right)
            .then(pl.lit("wrong_answer"))
            .otherwise(None)
            .alias("reject_reason")
        )
