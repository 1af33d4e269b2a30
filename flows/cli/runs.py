"""``sublearn run`` and ``sublearn step``: a config, or one step of a finished run, through
the one dispatch the deployments use too."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sublearn.core.config import ConfigError, load_config
from sublearn.eval.tables import (
    headline_line,
    preference_table,
    stats_table,
    study_table,
    summary_table,
)
from sublearn.flows.cli.common import (
    SET_OPTION,
    console,
    fail,
    interruptible,
    one_line_errors,
)

app = typer.Typer()


def execute(cfg, plan, run_dir: Path | None = None) -> None:
    """Run a config under a step plan and print what came of it."""
    from sublearn.flows.dispatch import run_config_under

    outcome = interruptible(lambda: run_config_under(cfg, plan, run_dir))
    console.print(summary_table(outcome["steps"]))
    if outcome.get("study"):
        console.print(study_table(outcome["study"]))
        console.print(f"report: [bold]{outcome['report']}[/]  plot: [bold]{outcome['plot']}[/]")
        return
    if outcome.get("results"):
        console.print(preference_table(outcome["results"]))
        console.print(headline_line(outcome["results"]), style="bold")
        console.print(f"report: [bold]{outcome['report']}[/]  plot: [bold]{outcome['plot']}[/]")
        return
    if outcome.get("stats"):
        console.print(stats_table(outcome["stats"], f"{cfg.name}: {cfg.dataset.kind} filters"))
    if outcome.get("run_dir"):
        console.print(f"run directory: [bold]{outcome['run_dir']}[/]")
    if outcome.get("published"):
        p = outcome["published"]
        console.print(f"published: [bold]{p['repo_id']}@{p['tag']}[/] (commit {p['commit']})")


def step_plan(only: str | None, start: str | None, force: list[str] | None, stop=None):
    from sublearn.core.steps import StepError, StepPlan

    try:
        return StepPlan(only=only, start=start, force=frozenset(force or ()), stop=stop)
    except StepError as err:
        fail(str(err))


@app.command()
@one_line_errors()
def run(
    config: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    only: Annotated[
        str | None, typer.Option("--only", help="Rerun this step alone, from cached inputs.")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Rerun this step and those after it.")
    ] = None,
    force: Annotated[
        list[str] | None, typer.Option("--force", help="Recompute this step (repeatable).")
    ] = None,
    stop: Annotated[str | None, typer.Option("--to", help="Stop after this step.")] = None,
    overrides: Annotated[list[str] | None, SET_OPTION] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Build the prompts, count their tokens, print requests, tokens and cost per "
            "generating dataset; send and generate nothing.",
        ),
    ] = False,
) -> None:
    """Run a config: teacher -> completions -> filter chain -> dataset (-> students -> eval).

    Steps: prompts, teacher, generate, filter, publish, rescore, finetune, evaluate, report. Each is
    reused when its inputs and code are unchanged; the table at the end says which ran."""
    plan = step_plan(only, start, force, stop)
    cfg = load_config(config, overrides or ())
    if dry_run:
        from sublearn.eval.tables import estimate_table
        from sublearn.flows.estimate import estimate_run

        console.print(estimate_table(estimate_run(cfg)))
        return
    execute(cfg, plan)


@app.command()
@one_line_errors()
def step(
    name: Annotated[str, typer.Argument(help="generate, filter, publish, finetune, evaluate...")],
    run_dir: Annotated[
        Path,
        typer.Option(
            "--run-dir",
            help="A run directory, or one of its experiment-<hash> folders for student steps.",
        ),
    ],
) -> None:
    """Run one step on an existing run directory, with the config saved there.

    A dataset's run directory holds the config of its latest run; each experiment-<hash>
    folder inside it holds the config of that experiment (student settings included)."""
    from sublearn.core.steps import EXPERIMENT_STEPS

    plan = step_plan(name, None, None)
    cfg = load_config(run_dir / "config.yaml")
    inside_experiment = run_dir.name.startswith("experiment-")
    dataset_dir = run_dir.parent if inside_experiment else run_dir
    cfg = cfg.model_copy(update={"output_dir": dataset_dir.parent})
    if name in EXPERIMENT_STEPS:
        if cfg.experiment is None:
            raise ConfigError(f"{run_dir}/config.yaml: step {name!r} needs an experiment: section")
        execute(cfg, plan)
        return
    execute(cfg, plan, dataset_dir)
