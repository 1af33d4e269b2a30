"""What a run prints: our own lines and Prefect's, not third-party progress bars and warnings.

transformers' "Loading weights" bars, GGUF conversion bars and library FutureWarnings drown
what a person needs to read; ``-v`` brings them back. When the output is not a terminal (a log
file, a Prefect worker, CI), progress bars cannot redraw, so steps log plain progress lines.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from pathlib import Path

QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # also turns off transformers' bars
    "TQDM_DISABLE": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "PYTHONWARNINGS": "ignore::FutureWarning,ignore::DeprecationWarning",
}


def configure_output(verbose: bool) -> None:
    """Quiet third-party output unless ``verbose``; our ``sublearn`` logger prints plain lines
    to stderr. Set before the libraries are imported (they read the environment then)."""
    if not verbose:
        for key, value in QUIET_ENV.items():
            os.environ.setdefault(key, value)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
    logger = logging.getLogger("sublearn")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbose else logging.INFO)


class ProgressLines:
    """Plain progress lines for output that is not a terminal: one every 10% of the work or
    every minute, whichever comes first, with rows done and the rate."""

    def __init__(self, description: str, log, every_s: float = 60.0):
        self.description = description
        self.log = log
        self.every_s = every_s
        self.started = self.last_time = time.monotonic()
        self.last_tenth = 0

    def update(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        tenth = int(10 * done / total) if total else 0
        if tenth <= self.last_tenth and now - self.last_time < self.every_s:
            return
        self.last_tenth, self.last_time = max(tenth, self.last_tenth), now
        rate = done / max(now - self.started, 1e-9)
        of = f"/{total} ({100 * done / total:.0f}%)" if total else ""
        self.log.info("%s: %d%s, %.1f/s", self.description, done, of, rate)


RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
# Prefect logs a failed run's end at INFO; it repeats the error the command's line gives.
FAILED_STATES = ("Finished in state Failed", "Finished in state Crashed")


class ErrorsToFile(logging.Filter):
    """On Prefect's console handler: a flow's or task's error record (the 30-120-line
    traceback of a failed run, its "Finished in state Failed" lines) goes to ``path`` instead
    of the terminal, where the command prints one line that names the file. Records for
    Prefect's own API log handler are untouched (they pass it before they reach the root's
    console handler)."""

    def __init__(self, path) -> None:
        super().__init__()
        self.path = path
        self.captured = False
        self._formatter = logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(RUN_LOGGERS):
            return True
        failed = record.getMessage().startswith(FAILED_STATES)
        if record.levelno < logging.ERROR and not failed:
            return True
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as log:
            log.write(self._formatter.format(record) + "\n")
        self.captured = True
        return False


def divert_run_errors(path) -> ErrorsToFile:
    """Send run errors to ``path`` from every console handler Prefect installed on the root
    logger (call after Prefect is imported: it sets its logging up then)."""
    import prefect.main  # noqa: F401  (sets Prefect's logging up: the root's console handler)
    from prefect.logging.handlers import PrefectConsoleHandler

    diverted = ErrorsToFile(path)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            handler.addFilter(diverted)
    return diverted


def stop_diverting(diverted: ErrorsToFile) -> None:
    for handler in logging.getLogger().handlers:
        handler.removeFilter(diverted)
