"""Prefect's temporary server outlives a killed sublearn: ``kill -9`` of ``sublearn run`` leaves
the uvicorn process Prefect started (~200 MB) running with no parent. Every sublearn process
marks the servers it starts (they inherit its environment, ``SUBLEARN_PREFECT_OWNER``), and
each command reaps, at its start, the marked servers whose owner is no longer their parent.
Linux only (``/proc``); elsewhere nothing is reaped."""

from __future__ import annotations

import os
import signal
from pathlib import Path

OWNER = "SUBLEARN_PREFECT_OWNER"
EPHEMERAL = b"PREFECT__SERVER_EPHEMERAL=1"


def mark_owner() -> None:
    """Servers this process starts will carry its pid."""
    os.environ[OWNER] = str(os.getpid())


def orphaned_servers(proc: Path = Path("/proc")) -> list[int]:
    """Temporary Prefect servers started by a sublearn process that is gone (their parent is
    no longer the process that marked them)."""
    found = []
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        owner = next((v for v in environ if v.startswith(f"{OWNER}=".encode())), None)
        if owner is None or EPHEMERAL not in environ:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent != int(owner.split(b"=", 1)[1]):
            found.append(int(entry.name))
    return found


def reap_orphaned_servers() -> list[int]:
    """Stop every orphaned temporary server; the pids stopped."""
    stopped = []
    for pid in orphaned_servers():
        try:
            os.kill(pid, signal.SIGTERM)
            stopped.append(pid)
        except OSError:
            continue
    return stopped
