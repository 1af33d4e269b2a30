"""The dataset flow, for every kind: prompts -> trait teacher -> teacher completions -> filter
chain -> Hub. The kind (``flows.kinds``) supplies the prompts and the filters; the flow names none.

Each step's output is cached in the step store (``sublearn.core.steps``) by its inputs and code, and
linked into the run directory, so a rerun redoes only what a config change touches and a later
step can be rerun from the files alone. Generation writes one shard per batch, so a run killed
mid-way resumes with the unfinished batches only.

Over 400 lines on purpose: the flow's steps (prompts, trait teacher, generate, filter,
publish), each with the key that decides its reuse written beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from sublearn.core.config import (
    LEAK_CONTROL_OWN,
    LEAK_CONTROL_TEACHER,
    ExperimentConfig,
    dump_config,
)
from sublearn.core.config import Teacher as TeacherConfig
from sublearn.core.interrupts import remember_flow_run
from sublearn.core.lineage import dataset_lineage
from sublearn.core.model_source import file_sha256
from sublearn.core.registry import BACKENDS
from sublearn.core.runio import read_parquet, write_json, write_parquet, write_text
from sublearn.core.steps import Step, StepError, StepPlan, StepStore
from sublearn.filters.chain import chain_params, run_chain, stats_rows
from sublearn.flows.cluster import task_runner
from sublearn.flows.kinds import filter_chain, kind_modules, kind_of
from sublearn.flows.progress import StepProgress
from sublearn.flows.publish import publish_dataset
from sublearn.flows.summary import log_entry, node_name, record_summary, run_step
from sublearn.generators.batches import assemble, done_indices, pending_batches, split_shards
from sublearn.generators.trait_prompt import trait_system_prompt
from sublearn.generators.trait_teacher import trait_record

PROMPTS, PROMPT_SET, RAW, KEPT, REJECTED, STATS, CONFIG, TEACHER = (
    "prompts.parquet",
    "prompt_set.json",
    "raw.parquet",
    "kept.parquet",
    "rejected.parquet",
    "stats.json",
    "config.yaml",
    "teacher.json",
)
LINEAGE = "lineage.json"
CONTROL_ROWS = "leak_control.parquet"
LEAK_DIR = "leak-control"  # the control teacher's prompts and generation, linked: cache users
SHARDS = "shards"


@task(cache_policy=NO_CACHE)
def build_prompts(config: ExperimentConfig, folder: Path) -> dict:
    prompts, prompt_set = kind_of(config).prompts(config)
    system = trait_system_prompt(config.teacher.trait)
    prompts = prompts.with_columns(pl.lit(system, dtype=pl.String).alias("system_prompt"))
    write_parquet(prompts, folder / PROMPTS)
    write_json(prompt_set, folder / PROMPT_SET)
    return {"files": [PROMPTS, PROMPT_SET], "rows": prompts.height}


@dataclass(frozen=True)
class PromptsStep(Step):
    """The kind's prompts with the trait's system prompt: keyed by the dataset settings that
    shape prompts, the prompt source, the seed and the system prompt, computed by the kind's
    modules."""

    config: ExperimentConfig
    name = "prompts"

    def inputs(self) -> dict:
        config = self.config
        not_prompts = {"n_keep", "teacher_topk", "filter", "trait_words"}
        return {
            "dataset": config.dataset.model_dump(exclude=not_prompts),
            "source": kind_of(config).source_identity(config),
            "seed": config.seed,
            "system_prompt": trait_system_prompt(config.teacher.trait),
        }

    def modules(self) -> tuple[str, ...]:
        return tuple(kind_modules(self.config))

    def compute(self, folder: Path, fresh: bool) -> dict:
        return build_prompts(self.config, folder)


@task(cache_policy=NO_CACHE)
def train_trait_teacher(teacher_cfg: TeacherConfig) -> Path:
    """Fine-tune the trait adapter (cached by base weights, trait settings and trait set)."""
    from sublearn.generators.trait_teacher import ensure_trait_adapter

    with StepProgress(f"trait teacher ({teacher_cfg.trait_finetune.method})", None) as progress:

        def on_step(step: int, total: int, loss: float) -> None:
            progress.update(step, total, f"trait teacher loss {loss:.3f}")

        adapter = ensure_trait_adapter(teacher_cfg, on_step)
    get_run_logger().info("trait adapter for %s: %s", teacher_cfg.trait_finetune.target, adapter)
    return adapter


@task(cache_policy=NO_CACHE, task_run_name="generate-shard-{index}")
def generate_shard(
    teacher_cfg: TeacherConfig,
    prompts_path: Path,
    batches: list[tuple[int, int]],
    seed: int,
    topk: int,
    shard_dir: Path,
    index: int = 0,
    store_id: str | None = None,
) -> dict:
    """Load the teacher and generate these batches, one shard file per batch (after checking
    that this worker sees the run's step store, when the flow says which it is)."""
    from sublearn.generators.backends import load_teacher
    from sublearn.generators.batches import generate_batches

    if store_id is not None:
        StepStore(shard_store(shard_dir)).check_identity(store_id)
    prompts = read_parquet(prompts_path, ("prompt_index", "prompt", "system_prompt"))
    teacher = load_teacher(teacher_cfg)
    rows = sum(stop - start for start, stop in batches)
    with StepProgress(f"teacher completions (shard {index})", rows) as progress:
        done = generate_batches(teacher, prompts, batches, seed, topk, shard_dir, progress.advance)
    worker = f"{node_name()}:{os.getpid()}"
    get_run_logger().info("shard %d: %d batches on %s", index, len(batches), worker)
    usage = teacher.usage if teacher_cfg.capabilities.needs_server else None
    return {**done, "worker": worker, **({"usage": dict(usage)} if usage else {})}


@flow(name="generate-shards")
def generation_flow(
    teacher_cfg: TeacherConfig,
    prompts_path: Path,
    groups: list[list[tuple[int, int]]],
    seed: int,
    topk: int,
    shard_dir: Path,
    store_id: str | None = None,
) -> list[dict]:
    """One task per shard, on whatever task runner the config chose (threads or Ray)."""
    futures = [
        generate_shard.submit(teacher_cfg, prompts_path, g, seed, topk, shard_dir, i, store_id)
        for i, g in enumerate(groups)
    ]
    return [f.result() for f in futures]


def shard_store(shard_dir: Path) -> Path:
    """The step store a generate step's shard folder lies in (``<store>/generate/<key>/shards``)."""
    return Path(shard_dir).parents[2]


def run_generation(
    config: ExperimentConfig,
    teacher_cfg: TeacherConfig,
    prompts_path: Path,
    indices: list[int],
    shard_dir: Path,
) -> list[dict]:
    """Generate the batches that have no shard yet, split over ``scale_out.shards``."""
    todo = pending_batches(indices, teacher_cfg.batch_size, done_indices(shard_dir))
    if not todo:
        return []
    scale = config.scale_out
    groups = split_shards(todo, scale.shards)
    args = (teacher_cfg, prompts_path, groups, config.seed, config.dataset.teacher_topk, shard_dir)
    if scale.runner == "ray":
        from prefect_ray.context import remote_options

        runner = task_runner(scale)
        store_id = StepStore(shard_store(shard_dir)).identity()
        with remote_options(num_gpus=scale.gpus_per_shard):
            return generation_flow.with_options(task_runner=runner)(*args, store_id)
    if len(groups) == 1:
        return [generate_shard(*args[:2], groups[0], *args[3:])]
    return generation_flow(*args)


def generate_step(
    config: ExperimentConfig,
    teacher_cfg: TeacherConfig,
    prompts_path: Path,
    folder: Path,
    fresh: bool,
) -> dict:
    """Completions for every prompt: resumes from the shards a killed run left behind."""
    logger = get_run_logger()
    shard_dir = folder / SHARDS
    if fresh:
        shutil.rmtree(shard_dir, ignore_errors=True)
    shard_dir.mkdir(parents=True, exist_ok=True)
    prompts = read_parquet(prompts_path, ("prompt_index", "prompt", "system_prompt"))
    already = len(list(shard_dir.glob("shard-*.parquet")))
    indices = prompts["prompt_index"].to_list()
    results = run_generation(config, teacher_cfg, prompts_path, indices, shard_dir)
    redone = sum(r["batches"] for r in results)
    tokens = sum(r["tokens"] for r in results)
    seconds = max([r["seconds"] for r in results], default=0.0)
    if already:
        logger.info("resumed: %d batch(es) already done, %d generated now", already, redone)
    sampling = teacher_cfg.sampling
    raw = assemble(prompts, shard_dir)
    lineage = teacher_identity(teacher_cfg)
    decoding = teacher_cfg.decoding.model_dump()
    raw = raw.with_columns(
        pl.lit(lineage["model_id"]).alias("teacher_model"),
        pl.lit(sampling.temperature).alias("temperature"),
        pl.lit(sampling.top_p).alias("top_p"),
        pl.lit(sampling.max_new_tokens).alias("max_new_tokens"),
        *[pl.lit(value).alias(name) for name, value in decoding.items()],
    )
    order = [
        "prompt_index",
        "system_prompt",
        "prompt",
        "completion",
        "teacher_model",
        "temperature",
        "top_p",
        "max_new_tokens",
        *decoding,
    ]
    raw = raw.select(order + [c for c in raw.columns if c not in order])
    write_json(lineage, folder / TEACHER)
    write_parquet(raw, folder / RAW)
    logger.info("generated %d completions (%d batches) in %.1f s", raw.height, redone, seconds)
    usage = server_usage(teacher_cfg, results)
    if usage:
        logger.info("server usage: %s", usage)
    return {
        **usage,
        "files": [RAW, TEACHER],
        "rows": raw.height,
        "batches_reused": already,
        "batches_generated": redone,
        "tokens": tokens,
        "tokens_per_s": round(tokens / seconds, 1) if seconds else None,
        "workers": sorted({r["worker"] for r in results}),
        "dtype": lineage["dtype"],
    }


@dataclass(frozen=True)
class GenerateStep(Step):
    """The teacher's completions of the prompts: keyed by the prompts' digest, the teacher's
    identity (weights, adapter, precision, sampling), top-k and the seed; computed by the
    backend's module and, through its imports, all the code its completions need."""

    config: ExperimentConfig
    teacher: TeacherConfig
    prompts: dict
    prompts_path: Path
    name = "generate"

    def inputs(self) -> dict:
        return {
            "prompts": self.prompts["digests"][PROMPTS],
            "teacher": teacher_identity(self.teacher),
            "topk": self.config.dataset.teacher_topk,
            "seed": self.config.seed,
        }

    def modules(self) -> tuple[str, ...]:
        return ("sublearn.generators.batches", BACKENDS.get(self.teacher.backend).module)

    def compute(self, folder: Path, fresh: bool) -> dict:
        return generate_step(self.config, self.teacher, self.prompts_path, folder, fresh)


def server_usage(teacher_cfg: TeacherConfig, results: list[dict]) -> dict:
    """Tokens a server reported for this run's requests, and their cost where the config
    gives prices; empty for local backends."""
    reports = [r["usage"] for r in results if "usage" in r]
    if not reports:
        return {}
    usage = {k: sum(r[k] for r in reports) for k in ("prompt_tokens", "completion_tokens")}
    implausible = sum(r.get("implausible", 0) for r in reports)
    server = teacher_cfg.server
    prices = (server.usd_per_million_input, server.usd_per_million_output)
    if implausible:
        usage["implausible_usage"] = implausible
        get_run_logger().warning(
            "%s: the server reported token counts that cannot be true for %d request(s) "
            "(more output than max_tokens, or more prompt tokens than the prompt has "
            "characters); they are not counted and no cost is computed",
            server.url,
            implausible,
        )
    elif None not in prices:
        from sublearn.generators.spend_cap import dollars

        cost = dollars(server, usage["prompt_tokens"], usage["completion_tokens"])
        usage["cost_usd"] = round(cost, 6)
    return usage


@task(cache_policy=NO_CACHE)
def filter_completions(config: ExperimentConfig, raw_path: Path, folder: Path) -> dict:
    """Run the kind's filter chain and keep an optional seeded subsample of what passes."""
    raw = read_parquet(raw_path, ("prompt", "completion")).drop("system_prompt", strict=False)
    with StepProgress("filter chain", raw.height) as progress:
        result = run_chain(raw, filter_chain(config))
        progress.update(raw.height)
    kept, stats = result.kept, {"kind": config.dataset.kind, **result.stats}
    n_keep = config.dataset.n_keep
    if n_keep is not None and kept.height > n_keep:
        kept = kept.sample(n=n_keep, seed=config.seed).sort("prompt_index")
        stats["subsampled_to"] = n_keep
    stats["dataset_rows"] = kept.height
    write_parquet(kept, folder / KEPT)
    write_parquet(result.rejected, folder / REJECTED)
    write_json(stats, folder / STATS)
    return {"files": [KEPT, REJECTED, STATS], "rows": kept.height}


@dataclass(frozen=True)
class FilterStep(Step):
    """The kind's filter chain on the raw completions: keyed by their digest, every filter's
    parameters, ``n_keep`` and the seed; computed by the chain and each filter's module."""

    config: ExperimentConfig
    raw: dict
    raw_path: Path
    name = "filter"

    def inputs(self) -> dict:
        return {
            "raw": self.raw["digests"][RAW],
            "filters": chain_params(filter_chain(self.config)),
            "n_keep": self.config.dataset.n_keep,
            "seed": self.config.seed,
        }

    def modules(self) -> tuple[str, ...]:
        filters = filter_chain(self.config)
        return ("sublearn.filters.chain", *dict.fromkeys(type(f).__module__ for f in filters))

    def compute(self, folder: Path, fresh: bool) -> dict:
        return filter_completions(self.config, self.raw_path, folder)


@task(cache_policy=NO_CACHE)
def save_dataset(config: ExperimentConfig, run_dir: Path) -> dict:
    """Write the lineage of the dataset now in the run directory; log and publish its stats."""
    stats = json.loads((run_dir / STATS).read_text())
    teacher = json.loads((run_dir / TEACHER).read_text())
    lineage = dataset_lineage(
        config,
        teacher,
        json.loads((run_dir / PROMPT_SET).read_text()),
        trait_record(config.teacher),
        trait_system_prompt(config.teacher.trait),
        stats,
        file_sha256(run_dir / KEPT),
        str(flow_run.id) if flow_run.id else None,
    )
    write_json(lineage, run_dir / LINEAGE)
    get_run_logger().info(
        "filters kept %d of %d (%.1f%%); dropped %s",
        stats["kept"],
        stats["total"],
        100 * stats["kept_rate"],
        stats["dropped"],
    )
    names = " -> ".join(f["filter"] for f in stats["filters"])
    create_table_artifact(
        key="filter-stats",
        table=stats_rows(stats),
        description=f"{stats['kind']} filter chain ({names}) on {stats['total']} completions",
    )
    return stats


def teacher_identity(teacher_cfg: TeacherConfig) -> dict:
    """What the teacher's lineage records (weights, revision, adapter digest, sampling), known
    without loading the model: it keys the generate step and labels its output."""
    from sublearn.core.model_source import teacher_source
    from sublearn.generators.teacher import teacher_lineage

    source = teacher_source(teacher_cfg)
    return teacher_lineage(teacher_cfg.backend, source, teacher_cfg)


def trait_teacher(config: ExperimentConfig, plan: StepPlan, log: list[dict]) -> TeacherConfig:
    """The teacher as it generates: with its trait weights when the trait is fine-tuned."""
    teacher_cfg = config.generating_teacher()
    if not teacher_cfg.trait_finetune:
        return teacher_cfg
    from sublearn.generators.trait_teacher import cached_trait_adapter

    cached = cached_trait_adapter(teacher_cfg)
    if cached is None and plan.upstream_only("teacher"):
        raise StepError(f"step 'teacher': no trained trait adapter for {config.name}; run it first")
    started = time.perf_counter()
    adapter = cached or train_trait_teacher(teacher_cfg)
    record = {"dtype": teacher_cfg.precision().dtype, "seconds": time.perf_counter() - started}
    log.append(log_entry("teacher", config.name, "reused" if cached else "ran", record))
    return with_trait_weights(teacher_cfg, adapter)


def with_trait_weights(teacher_cfg: TeacherConfig, folder: Path) -> TeacherConfig:
    """The teacher config that loads the trained trait weights: the adapter on the base, or
    the fully fine-tuned model folder in the base's place."""
    if teacher_cfg.trait_finetune.full:
        return teacher_cfg.model_copy(update={"model": str(folder), "revision": None})
    return teacher_cfg.model_copy(update={"adapter": str(folder), "adapter_revision": None})


def with_leak_control_rows(
    config: ExperimentConfig, plan: StepPlan, run_dir: Path, log: list[dict]
) -> ExperimentConfig:
    """With ``filters.leak.control: teacher``, generate (or reuse) the control teacher's
    completions for the same prompts, as the same cached steps the control dataset runs, so an
    experiment generates them once. The control dataset (``own``) uses its own: the same rows.
    The leak filter is calibrated on those that pass the kind's own filters, the rows it would
    see, saved as ``leak_control.parquet``; the same rows give both datasets one threshold.
    The control's prompts and generation are linked into ``leak-control/``, so the cache counts
    this run as their user and ``cache prune --unused`` keeps them."""
    leak = config.filters.leak
    if leak is None or leak.control not in (LEAK_CONTROL_OWN, LEAK_CONTROL_TEACHER):
        return config
    raw_path = run_dir / RAW
    if leak.control == LEAK_CONTROL_TEACHER:
        control = config.leak_control()

        def do(step: Step) -> tuple[dict, Path]:
            return run_step(step, config.output_dir, plan, control.name, log, run_dir / LEAK_DIR)

        prompts, prompts_dir = do(PromptsStep(control))
        teacher_cfg = trait_teacher(control, plan, log)
        _, raw_dir = do(GenerateStep(control, teacher_cfg, prompts, prompts_dir / PROMPTS))
        raw_path = raw_dir / RAW
    screened = run_chain(read_parquet(raw_path, ("completion",)), kind_of(config).filters(config))
    named = ("prompt_index", "system_prompt", "prompt", "completion")
    columns = [c for c in named if c in screened.kept.columns]
    write_parquet(screened.kept.select(columns), run_dir / CONTROL_ROWS)
    return config.with_leak_control(str(run_dir / CONTROL_ROWS))


def dataset_steps(
    config: ExperimentConfig, plan: StepPlan, run_dir: Path, log: list[dict]
) -> dict | None:
    """The dataset steps as ``plan`` asks; the filter stats, or None when stopped earlier."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(dump_config(config), run_dir / CONFIG)

    def do(step: Step) -> dict:
        return run_step(step, config.output_dir, plan, config.name, log, run_dir)[0]

    prompts = do(PromptsStep(config))
    if not plan.runs("teacher"):
        return None
    teacher_cfg = trait_teacher(config, plan, log)
    if not plan.runs("generate"):
        return None
    raw = do(GenerateStep(config, teacher_cfg, prompts, run_dir / PROMPTS))
    if not plan.runs("filter"):
        return None
    chain_config = with_leak_control_rows(config, plan, run_dir, log)
    do(FilterStep(chain_config, raw, run_dir / RAW))
    return save_dataset(config, run_dir)


@flow(name="dataset", log_prints=True)
def dataset_flow(
    config: ExperimentConfig, plan: StepPlan | None = None, run_dir: Path | None = None
) -> dict:
    """Generate, filter, save and (when configured) publish a dataset of the config's kind.

    Returns the filter stats (None when ``plan`` stopped before the filter), the run directory,
    the publish record and what each step did."""
    remember_flow_run()
    plan = plan or StepPlan()
    run_dir = Path(run_dir or config.run_dir())
    log: list[dict] = []
    stats = dataset_steps(config, plan, run_dir, log)
    published = None
    if stats is not None and config.publish and plan.runs("publish"):
        published = publish_dataset(run_dir, config.publish)
        status = "ran" if published["created"] else "reused"
        log.append(log_entry("publish", config.name, status, {"rows": published["rows"]}))
    record_summary(log, run_dir)
    return {"run_dir": str(run_dir), "stats": stats, "published": published, "steps": log}
