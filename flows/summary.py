"""The record every run ends with: what each step did (ran or reused), rows, time, tokens/s."""

from __future__ import annotations

import socket
from pathlib import Path

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.states import Completed

from sublearn.core.runio import write_json, write_text
from sublearn.core.steps import Step, StepPlan, link_into, step_store
from sublearn.flows.board import RUNNING

SUMMARY = "steps.json"
COLUMNS = ("step", "dataset", "status", "rows", "seconds", "tokens_per_s", "node")
USAGE = (
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "implausible_usage",
)  # from a server (backend openai)


def log_entry(step: str, label: str, status: str, record: dict) -> dict:
    """One step of this run: "ran" (with its time and throughput) or "reused" from the cache."""
    return {
        "step": step,
        "dataset": label,
        "status": status,
        "rows": record.get("rows"),
        "seconds": record.get("seconds") if status == "ran" else 0.0,
        "tokens_per_s": record.get("tokens_per_s") if status == "ran" else None,
        "batches_reused": record.get("batches_reused"),
        "batches_generated": record.get("batches_generated") if status == "ran" else 0,
        "dtype": record.get("dtype"),
        "node": record.get("node") if status == "ran" else None,
        **{k: record[k] for k in USAGE if status == "ran" and k in record},
    }


@task(cache_policy=NO_CACHE, task_run_name="{step} {label} (reused)")
def reused_step(step: str, label: str, key: str):
    """A reused step as a task run of its own, in the Cached state, so the flow run's graph in
    the Prefect UI shows every step, not only those that computed."""
    return Completed(name="Cached", message=f"reused from the step store: .steps/{step}/{key}")


def node_name() -> str:
    """Where this process runs: the host, and inside Ray the Ray node's id (several nodes may
    share a host)."""
    host = socket.gethostname()
    try:
        import ray
    except ImportError:
        return host
    if not ray.is_initialized():
        return host
    return f"{host}/{ray.get_runtime_context().get_node_id()[:12]}"


def on_node(step: Step):
    """The step's compute, marking the node it runs on as it starts (``flows.board`` shows
    it) and recording it."""

    def compute(folder: Path, fresh: bool) -> dict:
        node = node_name()
        write_text(node, folder / RUNNING)
        return {**step.compute(folder, fresh), "node": node}

    return compute


def run_step(
    step: Step,
    output_dir: Path,
    plan: StepPlan,
    label: str,
    log: list[dict],
    link_to: Path | None = None,
) -> tuple[dict, Path]:
    """Run or reuse one cached step, link its files into ``link_to`` and log what it did:
    the plumbing every step shares. Returns the step's record and its store folder."""
    store, key = step_store(output_dir), step.key()
    record, status = store.run(plan, step.name, key, on_node(step))
    folder = store.folder(step.name, key)
    finish_step(step, record, status, folder, label, log, link_to)
    return record, folder


def finish_step(
    step: Step,
    record: dict,
    status: str,
    folder: Path,
    label: str,
    log: list[dict],
    link_to: Path | None = None,
) -> None:
    """What follows a step wherever it ran: a reused one shown in Prefect, its files linked
    into the run's folder, its line in the summary."""
    if status == "reused" and FlowRunContext.get() is not None:
        reused_step(step.name, label, record["key"])
    if link_to is not None:
        for name in record["files"]:
            link_into(folder / name, Path(link_to) / name)
    log.append(log_entry(step.name, label, status, record))


def summary_rows(log: list[dict]) -> list[dict]:
    return [{c: e.get(c) for c in COLUMNS} for e in log]


def record_summary(log: list[dict], run_dir: Path) -> None:
    """Saved beside the outputs (``steps.json``) and as the run's ``run-summary`` artifact."""
    write_json(log, Path(run_dir) / SUMMARY)
    create_table_artifact(
        key="run-summary",
        table=summary_rows(log),
        description=f"Steps of the run in {run_dir}: ran or reused, rows, seconds, tokens/s",
    )
