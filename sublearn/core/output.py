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
