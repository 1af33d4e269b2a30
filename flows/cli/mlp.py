"""``sublearn mlp``: the study's MLP experiment (students distilled on noise)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sublearn.eval.tables import mlp_table
from sublearn.flows.cli.common import console, fail, interruptible, one_line_errors

app = typer.Typer()


@app.command()
@one_line_errors()
def mlp(
    dataset: Annotated[str, typer.Option(help="digits (bundled, offline) or mnist.")] = "digits",
    models: Annotated[int, typer.Option(help="Models per population (study: 100).")] = 20,
    aux: Annotated[
        list[int] | None, typer.Option(help="Auxiliary logits; repeat to sweep (1, 3, 10, 30).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for data split, inits and noise.")] = 0,
    teacher_epochs: Annotated[int, typer.Option(help="Teacher training epochs.")] = 5,
    distill_steps: Annotated[int, typer.Option(help="Noise distillation steps.")] = 2000,
    mnist_dir: Annotated[
        Path | None, typer.Option(help="Folder with MNIST IDX or parquet files.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
) -> None:
    """Subliminal learning in an MLP: students distilled on noise through auxiliary logits."""
    from sublearn.eval.mlp_experiment import MlpConfig

    aux_values = aux or [3]
    try:
        cfg = MlpConfig(
            dataset=dataset,
            models=models,
            aux=aux_values[0],
            seed=seed,
            teacher_epochs=teacher_epochs,
            distill_steps=distill_steps,
        )
        if min(aux_values) < 1:
            raise ValueError(f"aux: must be at least 1, got {min(aux_values)}")
        if dataset not in ("digits", "mnist"):
            raise ValueError(f"dataset: unknown {dataset!r} (choose digits or mnist)")
    except ValueError as err:
        fail(f"--{str(err).replace('_', '-')}")
    from sublearn.flows.mlp import mlp_flow

    aux_tag = "-".join(map(str, aux_values))
    out_dir = out or Path("runs") / f"mlp-{dataset}-k{models}-aux{aux_tag}-seed{seed}"
    report = interruptible(lambda: mlp_flow(cfg, aux_values, out_dir, mnist_dir))
    console.print(mlp_table(report, dataset, models))
    console.print(f"plot: [bold]{report['plot']}[/]  results: [bold]{report['json']}[/]")
