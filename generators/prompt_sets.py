"""Prompt sets from disk or the Hub: parquet or JSONL, columns mapped, a reproducible sample.

A set is read whole, its columns renamed to the ones a kind reads, sorted by content and then
sampled with the run's seed: the sample depends on what the set holds, not on the order its
files or rows happen to come in (the study's sample of an unordered set could not be redrawn).
Hub sets are read at a pinned revision and recorded by commit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from sublearn.core.errors import DataError
from sublearn.core.model_source import file_sha256

READERS = {".parquet": pl.read_parquet, ".jsonl": pl.read_ndjson, ".json": pl.read_ndjson}


def read_table(path: Path) -> pl.DataFrame:
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: a prompt set must be .parquet or .jsonl")
    try:
        return reader(path)
    except (pl.exceptions.PolarsError, OSError) as err:
        raise DataError(f"{path}: cannot read prompt set ({str(err).splitlines()[0]})") from None


def hub_files(spec) -> tuple[list[Path], str]:
    """The set's data files for its config and split at the pinned revision, and the commit."""
    from huggingface_hub import HfApi, snapshot_download

    from sublearn.core.hub import explain

    try:
        commit = HfApi().dataset_info(spec.repo_id, revision=spec.revision).sha
        folder = Path(
            snapshot_download(
                spec.repo_id,
                repo_type="dataset",
                revision=commit,
                allow_patterns=["*.parquet", "*.jsonl"],
            )
        )
    except Exception as err:
        raise explain(err, spec.repo_id, "read prompts from") from None
    files = [
        f
        for f in sorted(folder.rglob("*"))
        if f.suffix in (".parquet", ".jsonl")
        and (spec.config_name is None or spec.config_name in f.relative_to(folder).parts[:-1])
        and f.name.startswith(spec.split)
    ]
    if not files:
        raise DataError(
            f"{spec.repo_id}@{spec.revision}: no {spec.split} files"
            + (f" for config {spec.config_name}" if spec.config_name else "")
        )
    return files, commit


def load_prompt_set(spec, columns: tuple[str, ...], n: int, seed: int) -> tuple[pl.DataFrame, dict]:
    """``n`` rows with ``columns`` (after ``spec.columns`` renames them) and the set's identity."""
    if spec.path is not None:
        path = Path(spec.path)
        if path.exists() and not path.is_file():  # a folder, or a device that never ends
            raise DataError(f"{path}: prompt set is not a regular file")
        if not path.is_file():
            raise DataError(f"{path}: prompt set not found")
        frames, identity = [read_table(path)], {"path": str(path), "sha256": file_sha256(path)}
    else:
        files, commit = hub_files(spec)
        frames = [read_table(f) for f in files]
        identity = {
            "repo_id": spec.repo_id,
            "config_name": spec.config_name,
            "split": spec.split,
            "revision": spec.revision,
            "commit": commit,
        }
    where = spec.path or spec.repo_id
    frame = pl.concat(frames, how="diagonal_relaxed")
    rename = {theirs: ours for ours, theirs in spec.columns.items()}
    missing = [c for c in columns if c not in frame.rename(rename, strict=False).columns]
    if missing:
        raise DataError(f"{where}: no column {missing[0]!r} (map it with dataset.prompts.columns)")
    frame = frame.rename(rename, strict=False).select([pl.col(c).cast(pl.String) for c in columns])
    for column in columns:
        empty = frame.filter(pl.col(column).is_null() | (pl.col(column).str.strip_chars() == ""))
        if empty.height:
            raise DataError(
                f"{where}: {empty.height} row(s) with no {column!r} (null or blank); a prompt "
                "needs every column: drop those rows from the set"
            )
    frame = frame.unique(maintain_order=False).sort(columns)
    if n > frame.height:
        raise DataError(f"{where}: dataset.n_prompts {n} exceeds the set's {frame.height} rows")
    chosen = np.random.default_rng(seed).permutation(frame.height)[:n]
    return frame[chosen.tolist()], {**identity, "rows_in_set": frame.height}
