"""Checkpointed generation: prompts in fixed batches, each batch's completions one parquet shard.

Batches sit on a fixed grid of prompt indices (``[i*B, (i+1)*B)``) and each batch's sampling seed
is tied to its first index, so a resumed run generates the missing batches exactly as an
uninterrupted run would have. A shard is written atomically and named by its index range: after
a kill, a batch either has its whole shard or none, and the dataset is assembled from shards
with every prompt exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl

from sublearn.core.chat import ChatPrompt
from sublearn.core.errors import DataError
from sublearn.core.runio import read_parquet, write_parquet

Batch = tuple[int, int]


def batch_seed(seed: int, start: int) -> int:
    """A sampling seed per batch, tied to the batch's first prompt index, not to timing."""
    return seed * 1_000_003 + start


def shard_path(shard_dir: Path, batch: Batch) -> Path:
    return Path(shard_dir) / f"shard-{batch[0]:08d}-{batch[1]:08d}.parquet"


def done_indices(shard_dir: Path) -> set[int]:
    """Prompt indices that already have a completion in a finished shard."""
    shards = sorted(Path(shard_dir).glob("shard-*.parquet"))
    if not shards:
        return set()
    return set(
        pl.concat([read_parquet(s, ("prompt_index",)).select("prompt_index") for s in shards])[
            "prompt_index"
        ].to_list()
    )


def pending_batches(indices: Sequence[int], batch_size: int, done: set[int]) -> list[Batch]:
    """Grid batches holding prompts without a completion yet (half-open index ranges)."""
    ordered = sorted(indices)
    if not ordered:
        return []
    last = ordered[-1] + 1
    batches = []
    for start in range(0, last, batch_size):
        stop = min(start + batch_size, last)
        if any(i not in done for i in range(start, stop)):
            batches.append((start, stop))
    return batches


def split_shards(batches: list[Batch], shards: int) -> list[list[Batch]]:
    """Deal batches round-robin into at most ``shards`` groups, one per worker."""
    groups = [batches[i::shards] for i in range(shards)]
    return [g for g in groups if g]


def batch_chats(
    prompts: pl.DataFrame, batch: Batch, done: set[int]
) -> tuple[pl.DataFrame, list[ChatPrompt]]:
    """A batch's prompts that have no completion yet, as rows and as chats."""
    part = prompts.filter(
        pl.col("prompt_index").is_between(batch[0], batch[1], closed="left")
        & ~pl.col("prompt_index").is_in(list(done))
    )
    chats = [ChatPrompt(s, u) for s, u in zip(part["system_prompt"], part["prompt"], strict=True)]
    return part, chats


def generate_batches(
    teacher,
    prompts: pl.DataFrame,
    batches: list[Batch],
    seed: int,
    topk: int,
    shard_dir: Path,
    on_batch: Callable[[int], None] | None = None,
) -> dict:
    """Generate each batch and write its shard; returns batches, rows, tokens and seconds.

    ``prompts`` holds prompt_index, system_prompt and prompt; a batch takes the rows whose
    index lies in its range that have no completion yet.
    """
    if getattr(teacher, "batch_mode", False) and not topk:
        return generate_in_provider_batch(teacher, prompts, batches, seed, shard_dir, on_batch)
    done = done_indices(shard_dir)
    rows = tokens = 0
    started = time.perf_counter()
    ledger = ServerLedger.of(teacher, shard_dir)
    for batch in batches:
        part, chats = batch_chats(prompts, batch, done)
        booked = ledger.book(chats) if ledger else None
        try:
            if topk:
                out = teacher.generate_with_topk(chats, batch_seed(seed, batch[0]), topk)
            else:
                completions = teacher.generate(chats, batch_seed(seed, batch[0]))
                out = [{"completion": c} for c in completions]
        except BaseException:
            if ledger:
                ledger.release(booked)
            raise
        shard = pl.DataFrame({"prompt_index": part["prompt_index"]}).with_columns(
            pl.Series("completion", [r["completion"] for r in out], dtype=pl.String)
        )
        if topk:
            shard = shard.with_columns(
                pl.Series("completion_ids", [r["completion_ids"] for r in out]),
                pl.Series("topk_ids", [r["topk_ids"] for r in out]),
                pl.Series("topk_logprobs", [r["topk_logprobs"] for r in out]),
            )
            tokens += sum(len(r["completion_ids"]) for r in out)
        else:
            tokens += teacher.completion_tokens(shard["completion"].to_list())
        write_parquet(shard, shard_path(shard_dir, batch))
        if ledger:
            ledger.settle(batch, booked)
        rows += shard.height
        if on_batch is not None:
            on_batch(shard.height)
    return {
        "batches": len(batches),
        "rows": rows,
        "tokens": tokens,
        "seconds": time.perf_counter() - started,
    }


def generate_in_provider_batch(
    teacher,
    prompts: pl.DataFrame,
    batches: list[Batch],
    seed: int,
    shard_dir: Path,
    on_batch: Callable[[int], None] | None = None,
) -> dict:
    """``server.mode: batch``: every request of these batches as one provider batch (the same
    bodies and seeds as live mode), then one shard per grid batch as live mode writes them."""
    done = done_indices(shard_dir)
    started = time.perf_counter()
    parts, requests, chats_all = [], {}, []
    for batch in batches:
        part, chats = batch_chats(prompts, batch, done)
        chats_all += chats
        bodies = teacher.requests_for(chats, batch_seed(seed, batch[0]))
        for index, body in zip(part["prompt_index"], bodies, strict=True):
            requests[f"prompt-{index}"] = body
        parts.append((batch, part))
    name = f"{batches[0][0]:08d}"
    ledger = ServerLedger.of(teacher, shard_dir)
    from sublearn.generators.provider_batches import in_flight

    # a batch already submitted is paid for: only a new submission is checked against the cap
    booked = ledger.book(chats_all) if not in_flight(shard_dir, name) else 0.0
    before = teacher.usage["completion_tokens"]
    try:
        answers = teacher.generate_in_batches(requests, shard_dir, name)
    except BaseException:
        ledger.release(booked)
        raise
    rows = 0
    for batch, part in parts:
        completions = [answers[f"prompt-{i}"] for i in part["prompt_index"]]
        shard = pl.DataFrame({"prompt_index": part["prompt_index"]}).with_columns(
            pl.Series("completion", completions, dtype=pl.String)
        )
        write_parquet(shard, shard_path(shard_dir, batch))
        rows += shard.height
        if on_batch is not None:
            on_batch(shard.height)
    ledger.settle((batches[0][0], batches[-1][1]), booked)
    return {
        "batches": len(batches),
        "rows": rows,
        "tokens": teacher.usage["completion_tokens"] - before,
        "seconds": time.perf_counter() - started,
    }


class ServerLedger:
    """A server teacher's usage, batch by batch, written beside the shards (what the step has
    spent), with ``server.max_usd`` checked before each batch is sent."""

    def __init__(self, teacher, shard_dir: Path):
        from sublearn.generators.spend_cap import SpendCap

        self.teacher = teacher
        self.shard_dir = shard_dir
        server = teacher.cfg.server
        self.cap = None
        if server.max_usd is not None:
            self.cap = SpendCap(server, teacher.cfg.sampling.max_new_tokens, shard_dir)
        self.before = dict(teacher.usage)

    @classmethod
    def of(cls, teacher, shard_dir: Path) -> ServerLedger | None:
        """The ledger of a teacher that reports usage (a server), else None."""
        cfg = getattr(teacher, "cfg", None)
        if getattr(teacher, "usage", None) is None or getattr(cfg, "server", None) is None:
            return None
        return cls(teacher, shard_dir)

    def book(self, chats: list[ChatPrompt]) -> float:
        self.before = dict(self.teacher.usage)
        return self.cap.book(chats) if self.cap else 0.0

    def release(self, booked: float) -> None:
        if self.cap:
            self.cap.release(booked)

    def settle(self, batch: Batch, booked: float) -> None:
        from sublearn.core.runio import write_json
        from sublearn.generators.spend_cap import usage_path

        now = self.teacher.usage
        usage = {k: now[k] - self.before.get(k, 0) for k in ("prompt_tokens", "completion_tokens")}
        write_json(usage, usage_path(self.shard_dir, batch))
        self.release(booked)


def assemble(prompts: pl.DataFrame, shard_dir: Path) -> pl.DataFrame:
    """The prompts joined with their completions, each prompt exactly once, in index order."""
    shards = sorted(Path(shard_dir).glob("shard-*.parquet"))
    done = pl.concat([read_parquet(s) for s in shards], how="vertical_relaxed")
    duplicated = done.height - done["prompt_index"].n_unique()
    if duplicated:
        raise DataError(f"{shard_dir}: {duplicated} prompt(s) appear in more than one shard")
    raw = prompts.join(done, on="prompt_index", how="left").sort("prompt_index")
    missing = raw["completion"].null_count()
    if missing:
        raise DataError(f"{shard_dir}: {missing} prompt(s) have no completion")
    return raw
