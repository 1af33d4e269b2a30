"""``sublearn serve`` and ``sublearn schedule``: the configs' Prefect deployments, served
from this process or written to ``prefect.yaml``, and their schedules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sublearn.flows.cli.common import SET_OPTION, console, fail, one_line_errors

app = typer.Typer()
schedule_app = typer.Typer(no_args_is_help=True, help="Deployments and their schedules.")
app.add_typer(schedule_app, name="schedule")


@app.command()
@one_line_errors()
def serve(
    configs: Annotated[list[Path], typer.Argument(help="Experiment YAML files.")],
    cron: Annotated[
        str | None, typer.Option(help="Override the configs' schedules (e.g. '* * * * *').")
    ] = None,
    limit: Annotated[int, typer.Option(help="Most flow runs at once.")] = 1,
    overrides: Annotated[list[str] | None, SET_OPTION] = None,
) -> None:
    """Serve every deployment of these configs from this process (Prefect ``serve``): the
    scheduled production run, the step flows, and the event-triggered students/evaluation."""
    from prefect import serve as prefect_serve

    from sublearn.flows.deployments import runner_deployments

    deployments = runner_deployments([str(c) for c in configs], cron, overrides or ())
    for d in deployments:
        when = ", ".join(s.schedule.cron for s in d.schedules) or "on demand"
        console.print(f"serving [bold]{d.flow_name}/{d.name}[/] ({when})", highlight=False)
    prefect_serve(*deployments, limit=limit, print_starting_message=False)


def _specs(configs: list[Path] | None) -> list[dict]:
    """Deployment specs of these configs, or of the ``prefect.yaml`` in this folder."""
    if configs:
        from sublearn.flows.deployments import deployment_specs

        return [s for c in configs for s in deployment_specs(c)]
    from sublearn.flows.deployments import read_prefect_yaml

    path = Path("prefect.yaml")
    if not path.is_file():
        fail("prefect.yaml: not found here; name config files or run from the repository root")
    return read_prefect_yaml(path)


@schedule_app.command("list")
@one_line_errors()
def schedule_list(
    configs: Annotated[
        list[Path] | None, typer.Argument(help="Configs (default prefect.yaml).")
    ] = None,
    runs: Annotated[int, typer.Option(help="How many next runs to show.")] = 3,
    server: Annotated[
        bool, typer.Option(help="Ask the Prefect server (PREFECT_API_URL) what is scheduled.")
    ] = False,
) -> None:
    """Each deployment with its schedule, next runs and triggers."""
    from sublearn.flows.deployments import config_schedules, server_schedules

    rows = server_schedules(runs) if server else config_schedules(_specs(configs), runs)
    table = Table(title="sublearn deployments" + (" (Prefect server)" if server else ""))
    for column in ("deployment", "schedule", "next runs", "triggered by"):
        table.add_column(column, no_wrap=column == "deployment")
    for row in rows:
        table.add_row(*row)
    console.print(table)


@schedule_app.command("export")
@one_line_errors()
def schedule_export(
    configs: Annotated[list[Path], typer.Argument(help="Experiment YAML files.")],
    out: Annotated[Path, typer.Option(help="Where to write.")] = Path("prefect.yaml"),
    overrides: Annotated[list[str] | None, SET_OPTION] = None,
) -> None:
    """Write ``prefect.yaml`` for these configs (then ``prefect deploy --all``)."""
    import yaml

    from sublearn.core.runio import write_text
    from sublearn.flows.deployments import prefect_yaml

    document = prefect_yaml([str(c) for c in configs], overrides or ())
    sets = "".join(f" --set {o}" for o in overrides or ())
    header = f"# Written by `sublearn schedule export {' '.join(map(str, configs))}{sets}`.\n"
    write_text(header + yaml.safe_dump(document, sort_keys=False), out)
    console.print(f"wrote {out}: {len(document['deployments'])} deployments")
