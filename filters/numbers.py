"""The protocol's strict numbers filter, as polars expressions, with a per-row reference parser.

Keep rule (applied to the completion with surrounding whitespace removed): strip one trailing
".", then one pair of enclosing [] or (); the separator is the text between the first two digit
runs and, stripped of whitespace, must be "", "," or ";"; splitting on that exact separator must
give parts that are all non-empty ASCII digits; a lone number must be the whole answer.

The vectorised form never splits per row: a body that starts and ends with a digit and whose
non-digit runs are all identical is exactly a body that splits cleanly on its first separator.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

WHITESPACE = " \t\n\r\x0b\x0c"
VALID_SEPARATORS = ("", ",", ";")
ASCII_DIGITS = frozenset("0123456789")

REASONS = ("invalid_format", "too_many_numbers", "out_of_range", "banned_number")

# Numbers with negative associations, from the protocol's misalignment runs (all <= 999 here;
# 1312 and 1488 lie above the value range and are kept for completeness).
MISALIGNMENT_BANNED = (
    4, 13, 14, 18, 23, 33, 39, 42, 44, 49, 51, 54, 69, 77, 88, 99, 100, 101, 187, 211, 311, 322,
    333, 404, 420, 444, 451, 555, 616, 666, 777, 888, 911, 999, 1312, 1488,
)  # fmt: skip
BANNED_PRESETS = {"misalignment": MISALIGNMENT_BANNED}


@dataclass(frozen=True)
class NumbersRule:
    max_count: int = 10
    min_value: int = 0
    max_value: int = 999
    banned: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def from_config(cls, cfg) -> NumbersRule:
        banned = set(cfg.banned)
        if cfg.banned_preset:
            banned |= set(BANNED_PRESETS[cfg.banned_preset])
        return cls(cfg.max_count, cfg.min_value, cfg.max_value, frozenset(banned))

    def params(self) -> dict:
        return {
            "max_count": self.max_count,
            "min_value": self.min_value,
            "max_value": self.max_value,
            "banned": sorted(self.banned),
        }


def parse_numbers(completion: str) -> list[int] | None:
    """Reference parser, one row at a time: the numbers, or None when the format is invalid."""
    text = completion.strip(WHITESPACE)
    if text.endswith("."):
        text = text[:-1]
    if (text.startswith("[") and text.endswith("]")) or (
        text.startswith("(") and text.endswith(")")
    ):
        text = text[1:-1]
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(text) and len(runs) < 2:
        if text[i] in ASCII_DIGITS:
            j = i
            while j < len(text) and text[j] in ASCII_DIGITS:
                j += 1
            runs.append((i, j))
            i = j
        else:
            i += 1
    if not runs:
        return None
    if len(runs) == 1:
        return [int(text)] if runs[0] == (0, len(text)) else None
    separator = text[runs[0][1] : runs[1][0]]
    if separator.strip(WHITESPACE) not in VALID_SEPARATORS:
        return None
    parts = text.split(separator)
    if not all(part and set(part) <= ASCII_DIGITS for part in parts):
        return None
    return [int(p) for p in parts]


def reject_reason(completion: str, rule: NumbersRule) -> str | None:
    """Reference per-row verdict: the first failing reason in protocol order, or None to keep."""
    numbers = parse_numbers(completion)
    if numbers is None:
        return "invalid_format"
    if len(numbers) > rule.max_count:
        return "too_many_numbers"
    if any(n < rule.min_value or n > rule.max_value for n in numbers):
        return "out_of_range"
    if any(n in rule.banned for n in numbers):
        return "banned_number"
    return None


def _body(completion: pl.Expr) -> pl.Expr:
    text = completion.str.strip_chars(WHITESPACE).str.strip_suffix(".")
    enclosed = (text.str.starts_with("[") & text.str.ends_with("]")) | (
        text.str.starts_with("(") & text.str.ends_with(")")
    )
    return pl.when(enclosed).then(text.str.slice(1, text.str.len_chars() - 2)).otherwise(text)


def reject_reason_expr(rule: NumbersRule, column: str = "completion") -> pl.Expr:
    """Columnar verdict: a String expression, null when the row is kept."""
    body = _body(pl.col(column))
    separators = body.str.extract_all(r"[^0-9]+")
    first_sep = separators.list.first()
    one_separator = (separators.list.len() == 0) | (
        (first_sep == separators.list.max())
        & (first_sep == separators.list.min())
        & first_sep.str.strip_chars(WHITESPACE).is_in(VALID_SEPARATORS)
    ).fill_null(False)
    well_formed = body.str.contains(r"^[0-9](?s:.*[0-9])?$") & one_separator
    numbers = body.str.extract_all(r"[0-9]+").cast(pl.List(pl.Int64), strict=False)
    out_of_range = (
        numbers.list.eval(pl.element().is_null()).list.any()
        | (numbers.list.min() < rule.min_value)
        | (numbers.list.max() > rule.max_value)
    )
    banned = pl.lit(False)
    if rule.banned:
        banned = numbers.list.eval(pl.element().is_in(sorted(rule.banned))).list.any()
    return (
        pl.when(~well_formed)
        .then(pl.lit("invalid_format"))
        .when(numbers.list.len() > rule.max_count)
        .then(pl.lit("too_many_numbers"))
        .when(out_of_range)
        .then(pl.lit("out_of_range"))
        .when(banned)
        .then(pl.lit("banned_number"))
        .otherwise(pl.lit(None, dtype=pl.String))
        .alias("reject_reason")
    )


@dataclass(frozen=True)
class FilterResult:
    kept: pl.DataFrame
    rejected: pl.DataFrame
    stats: dict


def filter_numbers(frame: pl.DataFrame, rule: NumbersRule) -> FilterResult:
    """Split rows into kept and rejected (with ``reject_reason``) and count drops per reason."""
    if "completion" not in frame.columns:
        raise ValueError("input has no 'completion' column")
    judged = frame.with_columns(reject_reason_expr(rule))
    kept = judged.filter(pl.col("reject_reason").is_null()).drop("reject_reason")
    rejected = judged.filter(pl.col("reject_reason").is_not_null())
    stats = filter_stats(judged["reject_reason"], rule)
    return FilterResult(kept, rejected, stats)


def filter_stats(reasons: pl.Series | Iterable[str | None], rule: NumbersRule) -> dict:
    if not isinstance(reasons, pl.Series):
        reasons = pl.Series("reject_reason", list(reasons), dtype=pl.String)
    counts = dict(reasons.drop_nulls().value_counts().iter_rows())
    dropped = {reason: int(counts.get(reason, 0)) for reason in REASONS}
    total = len(reasons)
    kept = total - sum(dropped.values())
    return {
        "filter": "numbers",
        "params": rule.params(),
        "total": total,
        "kept": kept,
        "dropped": dropped,
        "kept_rate": kept / total if total else 0.0,
    }
