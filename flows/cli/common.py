"""What every command shares: the consoles, the one error line and its exit code, and
running flows so that Ctrl-C stops them within seconds."""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import typer
from rich.console import Console

from sublearn.core.config import ConfigError
from sublearn.core.errors import UserError
from sublearn.core.output import divert_run_errors, stop_diverting
from sublearn.eval.tables import plain

console = Console()
err_console = Console(stderr=True)

# ``--set key.path=value`` (repeatable): one field of the config, validated like the file.
SET_OPTION = typer.Option(
    "--set",
    help="Override a config field, e.g. --set dataset.n_prompts=30000 (repeatable; the value is "
    "YAML; part of the config hash and the run's config.yaml).",
)

# Set while a verb runs flows: where their tracebacks went, for the one error line to name.
_run_errors = None


def report_error(message: str) -> None:
    if _run_errors is not None and _run_errors.captured:
        message = f"{message} (details: {_run_errors.path})"
    err_console.print(
        "[bold red]error:[/] ", plain(message), sep="", highlight=False, soft_wrap=True
    )


def one_line(err: Exception) -> str:
    """An error as the command's one line: a disk or file problem names its file."""
    if isinstance(err, OSError) and not isinstance(err, UserError):
        return f"{err.filename or 'disk'}: {err.strerror or err}"
    return str(err).splitlines()[0]


def fail(message: str, code: int = 2) -> None:
    report_error(message)
    raise typer.Exit(code)


def one_line_errors(code: int = 1):
    """A command's user errors as its one line: a config or argument error exits 2, another
    error the user can fix (``UserError``) exits ``code``, a disk or file problem 1; anything
    else is a bug and keeps its traceback."""

    def decorate(command):
        @functools.wraps(command)
        def run(*args, **kwargs):
            try:
                return command(*args, **kwargs)
            except ConfigError as err:
                fail(one_line(err), 2)
            except UserError as err:
                fail(one_line(err), code)
            except OSError as err:
                fail(one_line(err), 1)

        return run

    return decorate


def interruptible(work):
    """``work()``, stopped within seconds by Ctrl-C or SIGTERM with one line (every verb that
    runs a flow goes through here)."""
    from sublearn.core.interrupts import INTERRUPTED, run_interruptible

    global _run_errors
    _run_errors = divert_run_errors(error_log_path())
    try:
        return run_interruptible(work, report_error)
    except KeyboardInterrupt:
        fail(INTERRUPTED, 130)
    finally:
        stop_diverting(_run_errors)


def error_log_path() -> Path:
    """Where this command's run errors (Prefect's tracebacks) go: one file per command."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path.home() / ".sublearn" / "logs" / f"sublearn-{stamp}-{os.getpid()}.log"
