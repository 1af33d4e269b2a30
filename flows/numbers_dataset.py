"""The dataset flow: prompts -> teacher completions -> strict filter -> saved dataset.

Tasks hand each other file paths, not data frames, so every step's output is on disk in the run
directory the moment it finishes, and a later step can be rerun from those files alone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from filters.numbers import FilterResult, NumbersRule, filter_numbers
from flows.publish import publish_dataset
from generators.numbers_prompts import numbers_prompts
from generators.teacher import ChatPrompt, load_teacher
from generators.trait_prompt import trait_system_prompt
from sublearn.config import ExperimentConfig, dump_config
from sublearn.config import Teacher as TeacherConfig
from sublearn.lineage import dataset_lineage, file_sha256
from sublearn.runio import read_parquet, write_json, write_parquet, write_text

PROMPTS, RAW, KEPT, REJECTED, STATS, CONFIG, TEACHER = (
    "prompts.parquet",
    "raw.parquet",
    "kept.parquet",
    "rejected.parquet",
    "stats.json",
    "config.yaml",
    "teacher.json",
)
LINEAGE = "lineage.json"


def batch_seed(seed: int, start: int) -> int:
    """A sampling seed per batch, tied to the batch's first prompt index, not to timing."""
    return seed * 1_000_003 + start


@task(cache_policy=NO_CACHE)
def build_prompts(config: ExperimentConfig, run_dir: Path) -> Path:
    prompts = numbers_prompts(config.dataset.n_prompts, config.seed, config.dataset.numbers)
    system = trait_system_prompt(config.teacher.trait)
    prompts = prompts.with_columns(pl.lit(system, dtype=pl.String).alias("system_prompt"))
    return write_parquet(prompts, run_dir / PROMPTS)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )


@task(cache_policy=NO_CACHE)
def train_trait_teacher(teacher_cfg: TeacherConfig) -> TeacherConfig:
    """Fine-tune (or reuse) the trait adapter; the teacher then generates with it merged."""
    from generators.trait_teacher import ensure_trait_adapter

    logger = get_run_logger()
    with _progress() as bar:
        job = bar.add_task("trait teacher (LoRA)", total=None)

        def on_step(step: int, total: int, loss: float) -> None:
            bar.update(
                job, completed=step, total=total, description=f"trait teacher loss {loss:.3f}"
            )

        adapter = ensure_trait_adapter(teacher_cfg, on_step)
    logger.info("trait adapter for %s: %s", teacher_cfg.trait_finetune.target, adapter)
    return teacher_cfg.model_copy(update={"adapter": str(adapter), "adapter_revision": None})


@task(cache_policy=NO_CACHE)
def generate_completions(
    config: ExperimentConfig, teacher_cfg: TeacherConfig, prompts_path: Path, run_dir: Path
) -> Path:
    logger = get_run_logger()
    prompts = read_parquet(prompts_path, ("prompt_index", "prompt", "system_prompt"))
    teacher = load_teacher(teacher_cfg)
    batch = teacher_cfg.batch_size
    pairs = zip(prompts["system_prompt"], prompts["prompt"], strict=True)
    chats = [ChatPrompt(system, user) for system, user in pairs]
    k = config.dataset.teacher_topk
    rows: list[dict] = []
    started = time.perf_counter()
    with _progress() as bar:
        job = bar.add_task("teacher completions", total=len(chats))
        for start in range(0, len(chats), batch):
            chunk = chats[start : start + batch]
            seed = batch_seed(config.seed, start)
            if k:
                rows += teacher.generate_with_topk(chunk, seed, k)
            else:
                rows += [{"completion": c} for c in teacher.generate(chunk, seed)]
            bar.advance(job, len(chunk))
    completions = [r["completion"] for r in rows]
    elapsed = time.perf_counter() - started
    sampling = teacher_cfg.sampling
    raw = prompts.select("prompt_index", "system_prompt", "prompt").with_columns(
        pl.Series("completion", completions, dtype=pl.String),
        pl.lit(teacher.lineage()["model_id"]).alias("teacher_model"),
        pl.lit(sampling.temperature).alias("temperature"),
        pl.lit(sampling.top_p).alias("top_p"),
        pl.lit(sampling.max_new_tokens).alias("max_new_tokens"),
        pl.lit(sampling.constrain_to_numbers).alias("constrain_to_numbers"),
    )
    if k:
        raw = raw.with_columns(
            pl.Series("completion_ids", [r["completion_ids"] for r in rows]),
            pl.Series("topk_ids", [r["topk_ids"] for r in rows]),
            pl.Series("topk_logprobs", [r["topk_logprobs"] for r in rows]),
        )
    write_json(teacher.lineage(), run_dir / TEACHER)
    logger.info("generated %d completions in %.1f s", len(completions), elapsed)
    return write_parquet(raw, run_dir / RAW)


@task(cache_policy=NO_CACHE)
def filter_completions(config: ExperimentConfig, raw_path: Path) -> FilterResult:
    """Apply the strict filter and keep an optional seeded subsample of what passes."""
    raw = read_parquet(raw_path, ("prompt", "completion")).drop("system_prompt", strict=False)
    result = filter_numbers(raw, NumbersRule.from_config(config.filters.numbers))
    n_keep = config.dataset.n_keep
    if n_keep is None or result.kept.height <= n_keep:
        return result
    kept = result.kept.sample(n=n_keep, seed=config.seed).sort("prompt_index")
    return FilterResult(kept, result.rejected, {**result.stats, "subsampled_to": n_keep})


@task(cache_policy=NO_CACHE)
def save_dataset(config: ExperimentConfig, result: FilterResult, run_dir: Path) -> dict:
    """Write kept, rejected, stats, config and lineage atomically; log and publish the stats."""
    logger = get_run_logger()
    stats = {**result.stats, "dataset_rows": result.kept.height}
    write_parquet(result.kept, run_dir / KEPT)
    write_parquet(result.rejected, run_dir / REJECTED)
    write_json(stats, run_dir / STATS)
    write_text(dump_config(config), run_dir / CONFIG)
    teacher = json.loads((run_dir / TEACHER).read_text())
    lineage = dataset_lineage(
        config,
        teacher,
        trait_system_prompt(config.teacher.trait),
        stats,
        file_sha256(run_dir / KEPT),
        str(flow_run.id) if flow_run.id else None,
    )
    write_json(lineage, run_dir / LINEAGE)
    logger.info(
        "filter kept %d of %d (%.1f%%); dropped %s",
        stats["kept"],
        stats["total"],
        100 * stats["kept_rate"],
        stats["dropped"],
    )
    create_table_artifact(
        key="numbers-filter-stats",
        table=[{"reason": "kept", "rows": stats["kept"]}]
        + [{"reason": r, "rows": n} for r, n in stats["dropped"].items()],
        description=f"Numbers filter on {stats['total']} teacher completions",
    )
    return stats


@flow(name="numbers-dataset", log_prints=True)
def numbers_dataset_flow(config: ExperimentConfig) -> dict:
    """Generate, filter and save a numbers dataset; returns the filter stats and run dir."""
    run_dir = config.run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    prompts_path = build_prompts(config, run_dir)
    teacher_cfg = config.teacher
    if teacher_cfg.trait_finetune:
        teacher_cfg = train_trait_teacher(teacher_cfg)
    raw_path = generate_completions(config, teacher_cfg, prompts_path, run_dir)
    result = filter_completions(config, raw_path)
    stats = save_dataset(config, result, run_dir)
    published = publish_dataset(run_dir, config.publish) if config.publish else None
    return {"run_dir": str(run_dir), "stats": stats, "published": published}
