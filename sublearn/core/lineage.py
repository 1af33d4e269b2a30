"""A dataset's lineage: everything that made it, in one JSON-able dict.

The study's lesson is that where data comes from matters as much as what it says, so each run
records its teacher (weights identified by Hub commit or file sha256), trait and full system
prompt, sampling, prompt set, seed, filters with per-reason counts, code version and Prefect run.
Nothing secret goes in: configs hold no tokens, and none is read here.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from sublearn import __version__


def git_commit() -> str | None:
    """The source checkout's commit, when sublearn runs from one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def dataset_lineage(
    config,
    teacher: dict,
    prompt_set: dict,
    trait: dict | None,
    system_prompt: str | None,
    stats: dict,
    data_sha256: str,
    flow_run_id: str | None,
    config_path: str | None = None,
) -> dict:
    return {
        "sublearn_version": __version__,
        "git_commit": git_commit(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "prefect_flow_run_id": flow_run_id,
        "run_name": config.name,
        "config_hash": config.config_hash(),
        "teacher": {k: v for k, v in teacher.items() if k != "sampling"},
        "trait": trait,
        "system_prompt": system_prompt,
        "sampling": teacher["sampling"],
        "dataset": {
            "kind": config.dataset.kind,
            "seed": config.seed,
            "n_prompts": config.dataset.n_prompts,
            "n_keep": config.dataset.n_keep,
            "prompt_set": prompt_set,
            "task": config.dataset.model_dump(exclude={"kind", "n_prompts", "n_keep"}),
        },
        "filters": [
            {
                "name": f["filter"],
                "params": f["params"],
                "rows_before": f["total"],
                "rows_after": f["kept"],
                "dropped": f["dropped"],
            }
            for f in stats["filters"]
        ],
        "rows": {
            "generated": stats["total"],
            "kept": stats["kept"],
            "published": stats["dataset_rows"],
        },
        "data_sha256": data_sha256,
        "config": config.content_dict(),
        "reproduce": f"sublearn run {config_path or 'config.yaml'}",
    }


LOCAL = "local:"


def public_lineage(lineage: object) -> object:
    """A lineage as it may leave this machine: every local path (a trait adapter under the
    user's cache, a model or prompt-set folder, a run directory) replaced by ``local:<its last
    part>``. Identity stays with the digests recorded beside those paths (``adapter_revision``,
    ``sha256``), so two machines publishing the same run publish the same lineage."""
    out = without_local_paths(lineage, lambda path: LOCAL + Path(path).name)
    if isinstance(out, dict) and isinstance(out.get("reproduce"), str):
        command, _, path = out["reproduce"].rpartition(" ")
        out["reproduce"] = f"{command} {Path(path).name}"
    return out


def without_local_paths(data: object, rename: Callable[[str], str]) -> object:
    """``data`` (JSON-like) with every string that is a local absolute path renamed."""
    if isinstance(data, dict):
        return {k: without_local_paths(v, rename) for k, v in data.items()}
    if isinstance(data, list):
        return [without_local_paths(v, rename) for v in data]
    if isinstance(data, str) and _local_path(data):
        return rename(data)
    return data


def _local_path(text: str) -> bool:
    return "\n" not in text and (text.startswith("~") or Path(text).is_absolute())


# What a reader of a published lineage relies on (the CLI's lineage table, students' sources).
REQUIRED_FIELDS = (
    "teacher.model_id",
    "teacher.revision",
    "sampling",
    "dataset.kind",
    "dataset.seed",
    "rows.generated",
    "rows.kept",
    "rows.published",
    "filters",
    "created_at",
)


def check_lineage(lineage: object, where: str) -> dict:
    """A lineage read from elsewhere, checked for the fields sublearn reads from it: one line
    naming the first one missing, instead of a KeyError deep in a command."""
    from sublearn.core.errors import DataError

    if not isinstance(lineage, dict):
        raise DataError(f"{where}: lineage is not a mapping; not a sublearn dataset")
    for field in REQUIRED_FIELDS:
        value = lineage
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            raise DataError(f"{where}: lineage lacks '{field}'; not a sublearn dataset")
    if not isinstance(lineage["sampling"], dict):
        raise DataError(f"{where}: lineage 'sampling' is not a mapping")
    filters = lineage["filters"]
    if not isinstance(filters, list) or not all(
        isinstance(f, dict)
        and {"name", "params", "dropped"} <= f.keys()
        and isinstance(f["dropped"], dict)
        for f in filters
    ):
        raise DataError(f"{where}: lineage 'filters' is not a list of filter records")
    for field, kind in TYPED_FIELDS.items():
        value = lineage
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None and not isinstance(value, kind):
            raise DataError(f"{where}: lineage '{field}' is not a {kind.__name__}")
    return lineage


# Optional fields the CLI's lineage table reads, with the type it reads them as.
TYPED_FIELDS = {
    "dataset": dict,
    "dataset.prompt_set": dict,
    "trait": dict,
    "teacher": dict,
    "rows": dict,
    "system_prompt": str,
}
