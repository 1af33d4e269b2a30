"""The ``sublearn`` command: the one entry point for runs, filters and (later) the Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sublearn.config import ConfigError, load_config

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
filter_app = typer.Typer(no_args_is_help=True, help="Apply a strict filter to a parquet file.")
app.add_typer(filter_app, name="filter")
console = Console()
err_console = Console(stderr=True)

USER_ERRORS = (ConfigError, FileNotFoundError, ValueError, RuntimeError)


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def stats_table(stats: dict, title: str) -> Table:
    table = Table(title=title)
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    table.add_column("share", justify="right")
    total = max(stats["total"], 1)
    rows = [("kept", stats["kept"])] + [(f"dropped: {r}", n) for r, n in stats["dropped"].items()]
    for name, n in rows:
        table.add_row(name, str(n), f"{100 * n / total:.1f}%")
    table.add_row("total", str(stats["total"]), "100.0%", style="bold")
    return table


@app.command()
def run(config: Annotated[Path, typer.Argument(help="Experiment YAML file.")]) -> None:
    """Run an experiment config: teacher -> numbers -> strict filter -> dataset."""
    try:
        cfg = load_config(config)
    except ConfigError as err:
        fail(str(err))
    from flows.numbers_dataset import numbers_dataset_flow
    from sublearn.model_source import ModelSourceError

    try:
        result = numbers_dataset_flow(cfg)
    except (ModelSourceError, *USER_ERRORS) as err:
        fail(str(err).splitlines()[0], code=1)
    console.print(stats_table(result["stats"], f"{cfg.name}: numbers filter"))
    console.print(f"run directory: [bold]{result['run_dir']}[/]")


@filter_app.command("numbers")
def filter_numbers_cmd(
    source: Annotated[Path, typer.Argument(help="Parquet file with prompt and completion.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for kept/rejected/stats.")],
    max_count: Annotated[int, typer.Option(help="Most numbers an answer may hold.")] = 10,
    min_value: Annotated[int, typer.Option(help="Smallest allowed number.")] = 0,
    max_value: Annotated[int, typer.Option(help="Largest allowed number.")] = 999,
    banned: Annotated[str, typer.Option(help="Comma-separated banned numbers.")] = "",
    banned_preset: Annotated[
        str | None, typer.Option(help="Named banned list, e.g. 'misalignment'.")
    ] = None,
) -> None:
    """Recheck any parquet of completions with the protocol's strict numbers filter."""
    from filters.numbers import BANNED_PRESETS, NumbersRule, filter_numbers
    from sublearn.runio import read_parquet, write_json, write_parquet

    try:
        banned_set = {int(x) for x in banned.split(",") if x.strip()}
    except ValueError:
        fail(f"--banned: expected comma-separated integers, got {banned!r}")
    if banned_preset is not None:
        if banned_preset not in BANNED_PRESETS:
            fail(f"--banned-preset: unknown preset {banned_preset!r} (known: misalignment)")
        banned_set |= set(BANNED_PRESETS[banned_preset])
    if min_value > max_value:
        fail("--min-value must not exceed --max-value")
    try:
        frame = read_parquet(source, ("prompt", "completion"))
    except (FileNotFoundError, ValueError) as err:
        fail(str(err))
    result = filter_numbers(
        frame, NumbersRule(max_count, min_value, max_value, frozenset(banned_set))
    )
    write_parquet(result.kept, out / "kept.parquet")
    write_parquet(result.rejected, out / "rejected.parquet")
    write_json({**result.stats, "source": str(source)}, out / "stats.json")
    console.print(stats_table(result.stats, f"numbers filter: {source}"))
    console.print(f"wrote {out}/kept.parquet, rejected.parquet, stats.json")


@app.command()
def version() -> None:
    """Print sublearn's version."""
    from sublearn import __version__

    console.print(__version__)
