"""A filter chain: small filters run in order, the chain does the counting.

A filter is a name, the reasons it can give, its parameters, and a batched verdict over a polars
frame: a reject reason (or null, to keep) per row, plus any columns it wants to attach (a
cleaned completion, a score). Each filter sees only the rows the ones before it kept. The chain
counts, per filter, the rows in, kept, dropped per reason (zero counts included) and seconds, as
datatrove's filters count what they drop; rejected rows carry ``reject_filter`` and
``reject_reason``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import polars as pl

from sublearn.core.errors import DataError


class RowFilter(Protocol):
    name: str
    reasons: tuple[str, ...]

    def params(self) -> dict:
        """What decides the verdicts: recorded in stats, lineage and the step key."""

    def judge(self, frame: pl.DataFrame) -> pl.DataFrame:
        """One row per input row: ``reject_reason`` (null keeps the row) and optional extra
        columns, which replace or join the frame's own."""


@dataclass(frozen=True)
class ChainResult:
    kept: pl.DataFrame
    rejected: pl.DataFrame
    stats: dict


VERDICT_COLUMNS = ("reject_reason", "reject_filter")


def chain_params(filters: Sequence[RowFilter]) -> list[dict]:
    """The chain as it decides verdicts: each filter's name and parameters, in order."""
    return [{"filter": f.name, "params": f.params()} for f in filters]


def run_chain(frame: pl.DataFrame, filters: Sequence[RowFilter]) -> ChainResult:
    if "completion" not in frame.columns:
        raise DataError("input has no 'completion' column")
    if frame.schema["completion"] != pl.String:
        raise DataError(f"column 'completion' must hold text, not {frame.schema['completion']}")
    # an earlier chain's verdict (refiltering a rejected.parquet) is not this chain's
    frame = frame.drop(VERDICT_COLUMNS, strict=False)
    rejected: list[pl.DataFrame] = []
    per_filter: list[dict] = []
    current = frame
    for f in filters:
        started = time.perf_counter()
        verdict = f.judge(current)
        if verdict.height != current.height or "reject_reason" not in verdict.columns:
            raise RuntimeError(f"filter {f.name}: verdict does not cover its {current.height} rows")
        unknown = set(verdict["reject_reason"].drop_nulls().unique()) - set(f.reasons)
        if unknown:
            raise RuntimeError(f"filter {f.name}: undeclared reasons {sorted(unknown)}")
        judged = current.with_columns(verdict)
        drop = judged["reject_reason"].is_not_null()
        rejected.append(
            judged.filter(drop).with_columns(pl.lit(f.name, dtype=pl.String).alias("reject_filter"))
        )
        current = judged.filter(~drop).drop("reject_reason")
        per_filter.append(filter_stats(f, judged["reject_reason"], time.perf_counter() - started))
    return ChainResult(current, _stack(rejected, frame), chain_stats(frame.height, per_filter))


def filter_stats(f: RowFilter, reasons: pl.Series, seconds: float) -> dict:
    counts = dict(reasons.drop_nulls().value_counts().iter_rows())
    dropped = {reason: int(counts.get(reason, 0)) for reason in f.reasons}
    total = len(reasons)
    kept = total - sum(dropped.values())
    return {
        "filter": f.name,
        "params": f.params(),
        "total": total,
        "kept": kept,
        "dropped": dropped,
        "kept_rate": kept / total if total else 0.0,
        "seconds": round(seconds, 4),
    }


def chain_stats(total: int, per_filter: list[dict]) -> dict:
    """The chain's totals over its filters' stats; a reason two filters share is named by
    filter (``filter:reason``) so no count is merged away."""
    dropped: dict[str, int] = {}
    for f in per_filter:
        for reason, n in f["dropped"].items():
            dropped[reason if reason not in dropped else f"{f['filter']}:{reason}"] = n
    kept = per_filter[-1]["kept"] if per_filter else total
    return {
        "total": total,
        "kept": kept,
        "dropped": dropped,
        "kept_rate": kept / total if total else 0.0,
        "filters": per_filter,
    }


def _stack(parts: list[pl.DataFrame], like: pl.DataFrame) -> pl.DataFrame:
    empty = like.clear().with_columns(
        pl.lit(None, dtype=pl.String).alias("reject_reason"),
        pl.lit(None, dtype=pl.String).alias("reject_filter"),
    )
    return pl.concat([empty, *parts], how="diagonal_relaxed")


def stats_rows(stats: dict) -> list[dict]:
    """The chain's stats as table rows (filter, outcome, rows): for the CLI, card and artifact."""
    rows = []
    for f in stats["filters"]:
        rows += [{"filter": f["filter"], "outcome": "in", "rows": f["total"]}]
        rows += [
            {"filter": f["filter"], "outcome": f"dropped: {r}", "rows": n}
            for r, n in f["dropped"].items()
        ]
    rows.append({"filter": "(chain)", "outcome": "kept", "rows": stats["kept"]})
    return rows
