"""The protocol's strict numbers filter, as polars expressions, with a per-row reference parser.

Keep rule (applied to the completion with surrounding whitespace removed): strip one trailing
".", then one pair of enclosing [] or (); the separator is the text between the first two digit
runs and, stripped of whitespace, must be "", "," or ";"; splitting on that exact separator must
give parts that are all non-empty ASCII digits; a lone number must be the whole answer.

The vectorised form never splits per row: a body that starts and ends with a digit and whose
non-digit runs are all identical is exactly a body that splits cleanly on its first separator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

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


_WS = "[ \\t\\n\\r\\x0b\\x0c]"
_NUM = "[0-9]+"
# Separators common enough to deserve the one-regex fast path; any other valid separator
# (say "  ;\\t") is caught by the general path, which runs only on the few rows that need it.
COMMON_SEPARATORS = tuple(
    dict.fromkeys(
        [f"{a}{c}{b}" for c in ",;" for a in ("", " ") for b in ("", " ", "\n", "  ")]
        + [" ", "  ", "\n", "\n\n", "\t", "\r\n", ", \n", ",\n\n"]
    )
)


def _escape(separator: str) -> str:
    return "".join({"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, ch) for ch in separator)


def _shape_regex() -> str:
    """Whole-answer regex for well-formed answers whose separator is a common one."""
    lists = "|".join(f"(?:{_escape(sep)}{_NUM})+" for sep in COMMON_SEPARATORS)
    body = f"{_NUM}(?:{lists})?"
    return f"^{_WS}*(?:\\[{body}\\]|\\({body}\\)|{body})\\.?{_WS}*$"


SHAPE_REGEX = _shape_regex()
# What every well-formed answer looks like at its ends, whatever its separator.
_ENDS = "[0-9](?s:.*[0-9])?"
ENDS_REGEX = f"^{_WS}*(?:\\[{_ENDS}\\]|\\({_ENDS}\\)|{_ENDS})\\.?{_WS}*$"
ALLOWED_CHARS_REGEX = r"^[0-9 \t\n\r\x0b\x0c,;.\[\]()]*$"
# Between two digits stands a separator; one holding a dot or bracket, or two of "," and ";",
# can never be valid, whatever the first separator was.
BAD_SEPARATOR_REGEX = f"[0-9][^0-9]*[.\\[\\]()][^0-9]*[0-9]|[0-9]{_WS}*[,;]{_WS}*[,;][^0-9]*[0-9]"


def range_regex(lo: int, hi: int) -> str:
    """A regex matching exactly the decimal numbers lo..hi (no sign, no leading zeros)."""
    lo = max(lo, 0)
    parts = []
    for width in range(len(str(lo)), len(str(hi)) + 1):
        a = max(lo, 10 ** (width - 1) if width > 1 else 0)
        b = min(hi, 10**width - 1)
        if a <= b:
            parts += _same_width(str(a), str(b))
    return "(?:" + "|".join(parts) + ")"


def _same_width(a: str, b: str) -> list[str]:
    if a == b:
        return [a]
    if len(a) == 1:
        return [f"[{a}-{b}]"]
    rest = len(a) - 1
    if a[0] == b[0]:
        return [a[0] + "(?:" + "|".join(_same_width(a[1:], b[1:])) + ")"]
    out = [a[0] + "(?:" + "|".join(_same_width(a[1:], "9" * rest)) + ")"]
    if int(b[0]) - int(a[0]) > 1:
        out.append(f"[{int(a[0]) + 1}-{int(b[0]) - 1}]" + "[0-9]" * rest)
    out.append(b[0] + "(?:" + "|".join(_same_width("0" * rest, b[1:])) + ")")
    return out


def _body(completion: pl.Expr) -> pl.Expr:
    """The answer stripped as the protocol says: whitespace, one ".", one pair of brackets."""
    text = completion.str.strip_chars(WHITESPACE).str.strip_suffix(".")
    enclosed = (text.str.starts_with("[") & text.str.ends_with("]")) | (
        text.str.starts_with("(") & text.str.ends_with(")")
    )
    return pl.when(enclosed).then(text.str.slice(1, text.str.len_chars() - 2)).otherwise(text)


def _general_well_formed(body: pl.Expr) -> pl.Expr:
    """The protocol's rule for any separator. A body that starts and ends with a digit, has
    n digit runs, holds n-1 copies of its first separator and no other non-digit character,
    is exactly a body that splits cleanly on that separator."""
    separator = body.str.extract(r"^[0-9]+([^0-9]+)[0-9]", 1)
    runs = body.str.count_matches(r"[0-9]+")
    non_digits = body.str.len_chars() - body.str.count_matches(r"[0-9]")
    one_separator = (
        separator.str.strip_chars(WHITESPACE).is_in(VALID_SEPARATORS)
        & (body.str.count_matches(separator, literal=True) == runs - 1)
        & (non_digits == (runs - 1) * separator.str.len_chars())
    )
    shaped = body.str.contains(r"^[0-9](?s:.*[0-9])?$")
    return shaped & ((runs == 1) | one_separator.fill_null(False))


def well_formed_expr(column: str = "completion") -> pl.Expr:
    """Fully general well-formedness as one expression (the slow path, on its own)."""
    return _general_well_formed(_body(pl.col(column)))


def reasons_from_shape(rule: NumbersRule, well_formed: pl.Expr, column: str = "completion"):
    """Reject reason given well-formedness; numbers are checked with regexes on the raw text
    (for a well-formed answer its digit runs are exactly its numbers)."""
    text = pl.col(column)
    too_many = text.str.contains(f"(?:{_NUM}[^0-9]+){{{rule.max_count}}}[0-9]")
    in_range = f"0*{range_regex(rule.min_value, rule.max_value)}"
    all_in_range = text.str.contains(f"^[^0-9]*{in_range}(?:[^0-9]+{in_range})*[^0-9]*$")
    expr = (
        pl.when(~well_formed)
        .then(pl.lit("invalid_format"))
        .when(too_many)
        .then(pl.lit("too_many_numbers"))
        .when(~all_in_range)
        .then(pl.lit("out_of_range"))
    )
    if rule.banned:
        expr = expr.when(text.str.contains(banned_regex(rule))).then(pl.lit("banned_number"))
    return expr.otherwise(pl.lit(None, dtype=pl.String)).alias("reject_reason")


def reject_reason_expr(rule: NumbersRule, column: str = "completion") -> pl.Expr:
    """The whole verdict as one polars expression (general path on every row)."""
    return reasons_from_shape(rule, well_formed_expr(column), column)


def keep_regex(rule: NumbersRule) -> str:
    """Whole-answer regex for answers that pass every check but the banned list, when their
    separator is a common one: shape, count and value range in one pass."""
    number = f"0*{range_regex(rule.min_value, rule.max_value)}"
    more = f"{{1,{rule.max_count - 1}}}" if rule.max_count > 1 else "{0}"
    lists = "|".join(f"(?:{_escape(sep)}{number}){more}" for sep in COMMON_SEPARATORS)
    body = f"{number}(?:{lists})?"
    return f"^{_WS}*(?:\\[{body}\\]|\\({body}\\)|{body})\\.?{_WS}*$"


# The whole-answer regex repeats the range regex per separator and per number: past this size
# (wide ranges with long lists) it no longer compiles within the regex engine's size limit, and
# the general path, which is correct for every rule, takes all rows instead.
FAST_PATH_BUDGET = 800_000


def banned_regex(rule: NumbersRule) -> str:
    banned = "|".join(str(n) for n in sorted(rule.banned))
    return f"(?:^|[^0-9])0*(?:{banned})(?:[^0-9]|$)"


def _select(frame: pl.DataFrame, **exprs: pl.Expr) -> pl.DataFrame:
    """Evaluate expressions with the streaming engine, which spreads rows over all cores."""
    return frame.lazy().select(**exprs).collect(engine="streaming")


def _well_formed(frame: pl.DataFrame, column: str) -> pl.Series:
    """Well-formedness of rows made only of allowed characters: regexes settle the common
    cases both ways, and the general path runs only on what they leave open."""
    text = pl.col(column)
    shape = _select(
        frame,
        fast=text.str.contains(SHAPE_REGEX).fill_null(False),
        bad=text.str.contains(BAD_SEPARATOR_REGEX).fill_null(False),
        ends=text.str.contains(ENDS_REGEX).fill_null(False),
    )
    unsure = ~shape["fast"] & ~shape["bad"] & shape["ends"]
    well_formed = shape["fast"]
    if unsure.any():
        index = unsure.arg_true()
        general = (
            frame[index]
            .lazy()
            .select(_body(text).alias("body"))
            .select(_general_well_formed(pl.col("body")).fill_null(False))
            .collect(engine="streaming")
            .to_series()
        )
        well_formed = well_formed.scatter(index, general)
    return well_formed


def judge_numbers(frame: pl.DataFrame, rule: NumbersRule, column: str = "completion") -> pl.Series:
    """The verdict per row (null = keep), fast. Each regex pass runs only on the rows still
    undecided: one whole-answer regex finds the rows that pass all but the banned check, the
    banned check runs on those, a character check settles most of the rest, and the detailed
    reasons are worked out only for what remains."""
    text = pl.col(column)
    frame = frame.select(column)
    fast = keep_regex(rule)
    if len(fast) * rule.max_count > FAST_PATH_BUDGET:
        return _select(frame, reject_reason=reasons_from_shape(rule, well_formed_expr(column)))[
            "reject_reason"
        ]
    keep = _select(frame, keep=text.str.contains(fast).fill_null(False))["keep"]
    reasons = pl.Series("reject_reason", [None] * frame.height, dtype=pl.String)
    if rule.banned and keep.any():
        index = keep.arg_true()
        hits = _select(frame[index], hit=text.str.contains(banned_regex(rule)))["hit"]
        reasons = reasons.scatter(index, hits.replace_strict({True: "banned_number", False: None}))
    if keep.all():
        return reasons
    index = (~keep).arg_true()
    rest = frame[index]
    allowed = _select(rest, ok=text.str.contains(ALLOWED_CHARS_REGEX).fill_null(True))["ok"]
    reasons = reasons.scatter(index.filter(~allowed), "invalid_format")
    if allowed.any():
        index, rest = index.filter(allowed), rest.filter(allowed)
        detailed = _select(
            rest.with_columns(_well_formed(rest, column).alias("_well_formed")),
            reason=reasons_from_shape(rule, pl.col("_well_formed"), column),
        )
        reasons = reasons.scatter(index, detailed["reason"])
    return reasons


@dataclass(frozen=True)
class NumbersFormat:
    """The numbers kind's strict filter as one unit of a filter chain."""

    rule: NumbersRule
    name: ClassVar[str] = "numbers"
    reasons: ClassVar[tuple[str, ...]] = REASONS

    def params(self) -> dict:
        return self.rule.params()

    def judge(self, frame: pl.DataFrame) -> pl.DataFrame:
        return judge_numbers(frame, self.rule).to_frame()
