"""Progress shown twice: a rich bar in the terminal (plain lines every 10% or minute when the
output is not one), and a Prefect progress artifact that the UI updates while a deployment
runs. Updates to the artifact are thinned to whole percents (each one is an API call of 15-50
ms)."""

from __future__ import annotations

import logging

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import get_run_context
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from sublearn.core.output import ProgressLines


def _in_a_run() -> bool:
    try:
        get_run_context()
    except RuntimeError:
        return False
    return True


class StepProgress:
    def __init__(self, description: str, total: int | None):
        self.description = description
        self.total = total
        self.done = 0
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        self.job = None
        self.artifact = None
        self.shown = -1
        self.lines = None
        if not self.bar.console.is_terminal:  # a bar cannot redraw here: plain lines instead
            self.bar.disable = True
            logger = get_run_logger() if _in_a_run() else logging.getLogger("sublearn")
            self.lines = ProgressLines(description, logger)

    def __enter__(self) -> StepProgress:
        self.bar.start()
        self.job = self.bar.add_task(self.description, total=self.total)
        if _in_a_run():
            self.artifact = create_progress_artifact(0.0, description=self.description)
        return self

    def update(self, done: int, total: int | None = None, description: str | None = None) -> None:
        self.done = done
        self.total = total or self.total
        self.bar.update(
            self.job,
            completed=done,
            total=self.total,
            description=description or self.description,
        )
        if self.lines is not None:
            self.lines.update(done, self.total)
        if self.artifact is not None and self.total:
            percent = int(100 * done / self.total)
            if percent > self.shown:
                self.shown = percent
                update_progress_artifact(self.artifact, float(percent))

    def advance(self, n: int) -> None:
        self.update(self.done + n)

    def __exit__(self, *exc) -> None:
        self.bar.stop()
