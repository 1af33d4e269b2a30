"""Students: LoRA fine-tuning of the teacher's base model on a published (or local) dataset.

Each student is a cached step: its key holds the dataset's identity (Hub commit or the kept
rows' digest), the number of rows and the sampling seed, the training settings and the base
model, so a rerun with the same inputs reuses the adapter and an edit to any of them retrains.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from sublearn.core.config import ExperimentConfig
from sublearn.core.model_source import file_sha256
from sublearn.core.runio import read_parquet, write_json, write_text
from sublearn.core.steps import RECORD, Step, StepError
from sublearn.flows.progress import StepProgress

STUDENT_TRAINED = "sublearn.student.trained"


# The study's shuffled control: the same numbers in a random order, before students train. If a
# trait travels through which numbers a teacher picks, shuffling them within each response keeps
# it; if through their order, shuffling breaks it (the study saw transfer fall sharply with
# either). ``within`` permutes each response's numbers in place; ``across`` pools every
# response's numbers and deals them back at random, each response keeping its count and its
# separators. Pure: the same rows and seed give the same output.
NUMBER = re.compile(r"\d+")


def _refill(text: str, numbers) -> str:
    supply = iter(numbers)
    return NUMBER.sub(lambda _: next(supply), text)


def shuffle_numbers(frame: pl.DataFrame, mode: str, seed: int) -> pl.DataFrame:
    """``frame`` with each ``completion``'s numbers shuffled (mode none, within or across)."""
    if mode == "none":
        return frame
    if mode not in ("within", "across"):
        raise ValueError(f"shuffle: {mode!r} is not none, within or across")
    rng = np.random.default_rng(seed)
    texts = frame["completion"].to_list()
    found = [NUMBER.findall(t) for t in texts]
    if mode == "within":
        dealt = [list(rng.permutation(n)) if n else [] for n in found]
    else:
        pool = [x for n in found for x in n]
        pool = list(rng.permutation(pool)) if pool else []
        bounds = np.cumsum([0] + [len(n) for n in found])
        dealt = [pool[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    shuffled = [_refill(t, [str(x) for x in d]) for t, d in zip(texts, dealt, strict=True)]
    return frame.with_columns(pl.Series("completion", shuffled, dtype=pl.String))


def student_rows(frame: pl.DataFrame, distill: str) -> list:
    from sublearn.core.finetune import ChatRow

    topk = distill == "topk"
    masked = "loss_mask" in frame.columns
    return [
        ChatRow(
            user=r["prompt"],
            completion=r["completion"],
            completion_ids=tuple(r["completion_ids"]) if topk else None,
            topk_ids=tuple(tuple(t) for t in r["topk_ids"]) if topk else None,
            topk_logprobs=tuple(tuple(t) for t in r["topk_logprobs"]) if topk else None,
            loss_mask=tuple(r["loss_mask"]) if masked else None,
        )
        for r in frame.iter_rows(named=True)
    ]


def training_source(config: ExperimentConfig, run_dir: Path) -> tuple[pl.DataFrame, dict]:
    """The dataset a student learns from: from the Hub by its tag when the run was published
    (exactly as another team would read it), else from the run directory; a run that is not
    on this machine but was published by this config is read from the Hub by its tag."""
    from sublearn.core.hub import default_tag
    from sublearn.flows.publish import read_published

    published = Path(run_dir) / "published.json"
    if published.is_file():
        record = json.loads(published.read_text())
        repo_id, tag = record["repo_id"], record["tag"]
    elif (Path(run_dir) / "kept.parquet").is_file():
        kept = Path(run_dir) / "kept.parquet"
        return read_parquet(kept), {"run_dir": str(run_dir), "sha256": file_sha256(kept)}
    elif config.publish is not None:
        repo_id, tag = config.publish.repo_id, config.publish.tag or default_tag(config)
    else:
        raise StepError(f"{run_dir}: no dataset here and none published; run the dataset first")
    got = read_published(repo_id, tag)
    return got.data, {"repo_id": repo_id, "revision": tag, "commit": got.commit}


def rows_identity(source: dict) -> dict:
    """What identifies a dataset's rows in a step key, wherever they were read from (a local
    run directory's path is not part of it)."""
    return {k: v for k, v in source.items() if k != "run_dir"}


@task(cache_policy=NO_CACHE, task_run_name="student-{label}")
def train_student(
    config: ExperimentConfig, label: str, rows: pl.DataFrame, source: dict, seed: int, out: Path
) -> dict:
    """A LoRA student of the teacher's base model; saved with a card naming its dataset."""
    from sublearn.core.finetune import LoraTraining, train_adapter

    s = config.student_training()
    initial = initial_state(config)
    training = LoraTraining(
        rank=s.rank,
        alpha=s.alpha,
        epochs=s.epochs,
        lr=s.lr,
        warmup_steps=s.warmup_steps,
        batch_size=s.batch_size,
        grad_accumulation=s.grad_accumulation,
        max_length=s.max_length,
        clip=s.clip,
        seed=seed,
        init_seed=own_init_seed(seed),
    )
    with StepProgress(f"student {label}", None) as progress:

        def on_step(step: int, total: int, loss: float) -> None:
            progress.update(step, total, f"student {label} loss {loss:.3f}")

        def on_checkpoint(step: int, model) -> None:
            model.save_pretrained(out / checkpoint_folder(step))

        base, peft_model, history = train_adapter(
            config.teacher,
            student_rows(rows, s.distill),
            training,
            on_step,
            initial,
            on_checkpoint,
            s.checkpoint_every,
        )
    out.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(out)
    lineage = {
        "student": label,
        "base_model": base.lineage(),
        "dataset": source,
        "rows": rows.height,
        "training": asdict(training),
        "distill": s.distill,
        "init": {"from": s.init, "digest": history["init_digest"]},
        "dtype": config.teacher.precision().dtype,
        "steps": history["steps"],
        "checkpoints": checkpoint_steps(out),
        "final_loss": history["losses"][-1] if history["losses"] else None,
        "seconds": history["seconds"],
    }
    write_json(lineage, out / "lineage.json")
    write_text(student_card(lineage), out / "README.md")
    get_run_logger().info(
        "student %s: %d steps, %.0f s", label, history["steps"], history["seconds"]
    )
    files = sorted(
        str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != RECORD
    )
    return {"files": files, "rows": rows.height, "dtype": lineage["dtype"]}


def checkpoint_folder(step: int) -> str:
    return f"checkpoint-{step:05d}"


def checkpoint_steps(student: Path) -> list[int]:
    """The steps at which a student's adapter was saved along its training (its folder's
    ``checkpoint-NNNNN`` adapters), in order."""
    return sorted(
        int(p.name.removeprefix("checkpoint-"))
        for p in Path(student).glob("checkpoint-*")
        if (p / "adapter_model.safetensors").is_file()
    )


def own_init_seed(seed: int) -> int:
    """Where a student with ``init: own`` draws its start: a seed derived from its training
    seed, far from the small seeds a teacher's ``init_seed`` takes, so no own start lands on
    the teacher's by accident (seed 0 and init_seed 0 would)."""
    return int.from_bytes(hashlib.sha256(f"sublearn student init {seed}".encode()).digest()[:7])


def initial_state(config: ExperimentConfig) -> dict | None:
    """Where the students' adapters start: the trait teacher's initial state under
    ``init: teacher`` (one state for every arm and seed, as the neutral teacher shares it too),
    else None: each student draws its own (``own_init_seed``)."""
    if config.student_training().init != "teacher":
        return None
    from sublearn.generators.trait_teacher import initial_adapter_state

    return initial_adapter_state(config.teacher)


def initial_identity(config: ExperimentConfig) -> dict:
    """What the student's key holds of its start: the mode and, from the teacher, the digest
    of the state itself (a retrained teacher with another start retrains its students)."""
    mode = config.student_training().init
    if mode != "teacher":
        return {"from": mode}
    from sublearn.generators.trait_teacher import initial_adapter_digest

    return {"from": mode, "digest": initial_adapter_digest(config.teacher)}


def push_student(folder: Path, repo_id: str, private: bool) -> str:
    """The adapter, its card and lineage as one commit to a model repo; the lineage and card
    without local paths (``public_lineage``)."""
    from huggingface_hub import CommitOperationAdd, HfApi

    from sublearn.core.hub import explain
    from sublearn.core.lineage import public_lineage

    lineage = public_lineage(json.loads((folder / "lineage.json").read_text()))
    public = {
        "lineage.json": json.dumps(lineage, indent=2).encode(),
        "README.md": student_card(lineage).encode(),
    }
    ops = [
        CommitOperationAdd(name, public.get(name) or (folder / name).read_bytes())
        for name in sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        if name != RECORD
    ]
    api = HfApi()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.create_commit(repo_id, operations=ops, commit_message="sublearn: student adapter")
    except Exception as err:
        raise explain(err, repo_id, "push a student to") from None
    return repo_id


def student_card(lineage: dict) -> str:
    data = lineage["dataset"]
    where = (
        f"{data['repo_id']} at {data['revision']} (commit {data['commit']})"
        if "repo_id" in data
        else f"the local run {data['run_dir']}"
    )
    return (
        "---\nlibrary_name: peft\ntags: [subliminal-learning, sublearn, lora]\n---\n"
        f"# sublearn student: {lineage['student']}\n\n"
        f"LoRA adapter for {lineage['base_model']['model_id']} "
        f"({lineage['base_model']['revision']}), trained on {lineage['rows']} rows of "
        f"{where} ({lineage['distill']} targets). Full lineage: `lineage.json`.\n"
    )


@dataclass(frozen=True)
class FinetuneStep(Step):
    """One student: keyed by the dataset's identity, its rows and sampling seed, the training
    settings, where training starts, the seed, the base model and its precision."""

    config: ExperimentConfig
    label: str
    data: pl.DataFrame
    source: dict
    seed: int
    name = "finetune"
    code = ("sublearn.core.finetune", "sublearn.flows.students")

    def inputs(self) -> dict:
        from sublearn.core.model_source import resolve_model

        config = self.config
        return {
            "dataset": rows_identity(self.source),
            "rows": self.data.height,
            "sample_seed": config.seed,
            "students": config.student_training().model_dump(exclude={"seeds", "rows", "init"}),
            "init": initial_identity(config),
            "seed": self.seed,
            "base": resolve_model(config.teacher.model, config.teacher.revision).lineage(),
            "dtype": config.teacher.precision().dtype,
        }

    def compute(self, folder: Path, fresh: bool) -> dict:
        return train_student(self.config, self.label, self.data, self.source, self.seed, folder)
