"""The ``sublearn`` command: parses arguments and calls the flows; it decides nothing
itself. One module per command group; ``common`` turns user errors into one line, and the
tables and verdicts it prints come from ``sublearn.eval.tables``."""

from __future__ import annotations

from typing import Annotated

import typer

from sublearn.flows.cli import audit, cache, filtering, hub, mlp, runs, schedule
from sublearn.flows.cli.common import console

# Locals stay out of tracebacks: they can hold tokens and whole datasets.
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Subliminal-learning datasets and experiments as Prefect workflows.",
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also show library progress bars and warnings.")
    ] = False,
) -> None:
    """Subliminal-learning datasets and experiments as Prefect workflows."""
    from sublearn.core.orphans import reap_orphaned_servers
    from sublearn.core.output import configure_output

    configure_output(verbose)
    reap_orphaned_servers()  # left by a sublearn that was killed (kill -9 skips its cleanup)


@app.command()
def version() -> None:
    """Print sublearn's version."""
    from sublearn import __version__

    console.print(__version__)


for group in (runs, filtering, hub, mlp, schedule, cache):
    app.add_typer(group.app)
app.add_typer(audit.app, name="audit")
