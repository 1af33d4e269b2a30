"""Ctrl-C and SIGTERM stop a run within seconds, with one line, keeping what is finished.

A terminal's Ctrl-C reaches the whole process group, so Prefect's temporary API server dies
with the run; a scheduler's or container's SIGTERM arrives the same way. Left to itself the
run then spends minutes retrying reports to the dead server. Everything a run keeps is already
safe on disk (atomic step files, one shard per batch, records written last), so the right
response is to say so and leave at once. The run goes in a worker thread so that Prefect's own
SIGTERM handler (installable only in the main thread) stays out of the way and the main thread
answers both signals.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

INTERRUPTED = "interrupted; finished steps and generation batches are kept: rerun to resume"
_active_runs: set[str] = set()


def remember_flow_run() -> None:
    """Called by top-level flows: the runs to mark as crashed on an external server."""
    from prefect.runtime import flow_run

    if flow_run.id:
        _active_runs.add(str(flow_run.id))


def _mark_crashed() -> None:
    """Tell an external Prefect server (PREFECT_API_URL) that the runs ended; a temporary
    server dies with the process, so there is no one to tell."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL
    from prefect.states import Crashed

    if not PREFECT_API_URL.value() or not _active_runs:
        return
    with get_client(sync_client=True) as client:
        for run_id in list(_active_runs):
            client.set_flow_run_state(run_id, Crashed(message=INTERRUPTED), force=True)


def _stop_temporary_servers() -> None:
    """Stop Prefect's temporary API server if this process started one (a SIGTERM sent to
    this process alone would otherwise leave it running)."""
    from prefect.server.api.server import SubprocessASGIServer

    for server in list(SubprocessASGIServer._instances.values()):
        process = getattr(server, "server_process", None)
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except Exception:
                process.kill()


def _leave(signum: int, report: Callable[[str], None]) -> None:
    report(INTERRUPTED)
    for step in (_mark_crashed, _stop_temporary_servers):
        worker = threading.Thread(target=_quietly, args=(step,), daemon=True)
        worker.start()
        worker.join(timeout=5)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(128 + signum)


def _quietly(step: Callable[[], None]) -> None:
    with contextlib.suppress(Exception):  # best effort: the run's files are already safe
        step()


def run_interruptible(work: Callable[[], T], report: Callable[[str], None]) -> T:
    """``work()`` in a worker thread; on SIGINT or SIGTERM, ``report`` the one line and exit
    with 130 or 143. Outside the main thread (a test runner's thread), just ``work()``."""
    if threading.current_thread() is not threading.main_thread():
        return work()
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as err:  # re-raised in the main thread
            outcome["error"] = err

    previous = {
        sig: signal.signal(sig, lambda signum, _frame: _leave(signum, report))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        worker = threading.Thread(target=target, name="sublearn-run", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(timeout=0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[return-value]
