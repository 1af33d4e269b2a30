"""Refilter any parquet of completions with a kind's filter chain (``sublearn filter KIND``).

The same chain a run applies, built from the same config model, so a published dataset can be
rechecked, or another team's completions filtered, with exactly the rules a run would use.
"""

from __future__ import annotations

from pathlib import Path

from sublearn.core.config import ExperimentConfig
from sublearn.core.errors import DataError
from sublearn.core.runio import json_writer, read_parquet, write_outputs
from sublearn.filters.chain import ChainResult, run_chain
from sublearn.flows.kinds import filter_chain, kind_of


def refilter(config: ExperimentConfig, source: Path, out: Path) -> ChainResult:
    """Filter ``source`` and write kept.parquet, rejected.parquet and stats.json as a set."""
    kind = config.dataset.kind
    frame = read_parquet(source, ("completion", *kind_of(config).reads))
    try:
        result = run_chain(frame, filter_chain(config))
    except DataError as err:
        raise DataError(f"{source}: {err}") from None
    stats = {"kind": kind, **result.stats, "source": str(source)}
    write_outputs(
        out,
        {
            "kept.parquet": result.kept.write_parquet,
            "rejected.parquet": result.rejected.write_parquet,
            "stats.json": json_writer(stats),
        },
    )
    return ChainResult(result.kept, result.rejected, stats)
