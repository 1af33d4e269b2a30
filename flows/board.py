"""The study at a glance while its steps run on a cluster: one line per running step with the
node it runs on, and the study's steps done out of those known so far. A live table on a
terminal; off one (a log file, a Prefect worker, CI) a plain line whenever a step starts or
ends. It reads only the step store (a running step's node marker, a finished step's record), so
it needs nothing from Ray and shows steps started by any process."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from sublearn.core.steps import RECORD

RUNNING = ".node"  # written into a step's store folder when it starts computing: its node


@dataclass
class Tracked:
    label: str
    folder: Path
    state: str = "waiting"
    node: str | None = None
    since: float = 0.0


class StepsBoard:
    """Watches ``steps`` (label, store folder) on a thread while a phase runs. ``done_before``
    and ``known_before`` are the study's steps finished and known before this phase."""

    def __init__(
        self,
        steps: list[tuple[str, Path]],
        done_before: int = 0,
        known_before: int = 0,
        log: logging.Logger | None = None,
        every_s: float = 1.0,
        console: Console | None = None,
    ):
        self.steps = [Tracked(label, Path(folder)) for label, folder in steps]
        self.done_before, self.known_before = done_before, known_before
        self.log = log or logging.getLogger("sublearn")
        self.every_s = every_s
        self.console = console or Console(stderr=True)
        self.started = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Live | None = None

    @property
    def done(self) -> int:
        return self.done_before + sum(t.state == "done" for t in self.steps)

    @property
    def total(self) -> int:
        return self.known_before + len(self.steps)

    def poll(self) -> list[str]:
        """Read the store; return a line for each step that started or ended since the last
        poll. A node marker older than this board belongs to an earlier run: not running."""
        changes = []
        for tracked in self.steps:
            state, node = self._state(tracked.folder)
            if state == tracked.state:
                continue
            tracked.state, tracked.node = state, node or tracked.node
            tracked.since = time.time()
            where = f" on {tracked.node}" if tracked.node else ""
            changes.append(f"[{self.done}/{self.total}] {tracked.label}: {state}{where}")
        return changes

    def _state(self, folder: Path) -> tuple[str, str | None]:
        record = folder / RECORD
        if record.is_file() and record.stat().st_mtime >= self.started - 1:
            try:
                return "done", json.loads(record.read_text()).get("node")
            except (OSError, ValueError):
                return "running", None
        marker = folder / RUNNING
        try:
            if marker.stat().st_mtime >= self.started - 1:
                return "running", marker.read_text().strip() or None
        except OSError:
            pass
        return "waiting", None

    def table(self) -> Table:
        table = Table(title=f"steps done {self.done}/{self.total}", title_justify="left")
        for column in ("step", "node", "running for"):
            table.add_column(column)
        now = time.time()
        for tracked in self.steps:
            if tracked.state == "running":
                table.add_row(tracked.label, tracked.node or "", f"{now - tracked.since:.0f} s")
        return table

    def _watch(self) -> None:
        while not self._stop.wait(self.every_s):
            self._show(self.poll())

    def _show(self, changes: list[str]) -> None:
        if self._live is not None:
            self._live.update(self.table())
        else:
            for line in changes:
                self.log.info(line)

    def __enter__(self) -> StepsBoard:
        if self.console.is_terminal:
            self._live = Live(self.table(), console=self.console, transient=True)
            self._live.start()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._show(self.poll())
        if self._live is not None:
            self._live.stop()
            self.console.print(f"steps done {self.done}/{self.total}")
