"""Prefect defaults for sublearn, set before Prefect is imported (it reads them at import).

Users' own settings win: only unset variables are filled in.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULTS = {
    "PREFECT_HOME": str(Path.home() / ".sublearn" / "prefect"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_LEVEL": "INFO",
}

for key, value in DEFAULTS.items():
    os.environ.setdefault(key, value)

Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
