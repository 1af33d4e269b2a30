"""The MLP experiment as a Prefect flow: one task per auxiliary-logit count, then the report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from sublearn.core.runio import write_json, write_text
from sublearn.eval.mlp_data import Digits, load_digit_images
from sublearn.eval.mlp_experiment import MlpConfig, run_mlp_experiment
from sublearn.eval.mlp_report import markdown_table, plot_accuracies, summary_rows


@task(cache_policy=NO_CACHE)
def load_images(name: str, seed: int, folder: Path | None) -> Digits:
    return load_digit_images(name, seed, folder)


@task(cache_policy=NO_CACHE, task_run_name="mlp-aux-{cfg.aux}")
def train_population(cfg: MlpConfig, data: Digits) -> dict:
    return run_mlp_experiment(cfg, data)


@task(cache_policy=NO_CACHE)
def save_report(results: list[dict], out_dir: Path) -> dict:
    rows = summary_rows(results)
    table = markdown_table(rows)
    plot = plot_accuracies(results, out_dir / "mlp.png")
    write_json({"results": results, "summary": rows}, out_dir / "mlp.json")
    write_text(
        f"# MLP subliminal-learning experiment\n\n{table}\n\n![accuracies](mlp.png)\n",
        out_dir / "report.md",
    )
    create_table_artifact(key="mlp-accuracies", table=rows, description="Test accuracy per variant")
    create_markdown_artifact(
        key="mlp-report", markdown=f"{table}\n\nPlot: `{plot.resolve()}`", description="MLP"
    )
    get_run_logger().info("MLP report written to %s", out_dir)
    return {"rows": rows, "plot": str(plot), "json": str(out_dir / "mlp.json")}


@flow(name="mlp-subliminal")
def mlp_flow(
    cfg: MlpConfig, aux_values: list[int], out_dir: Path, mnist_dir: Path | None = None
) -> dict:
    data = load_images(cfg.dataset, cfg.seed, mnist_dir)
    results = [train_population(replace(cfg, aux=aux), data) for aux in aux_values]
    return save_report(results, out_dir)
