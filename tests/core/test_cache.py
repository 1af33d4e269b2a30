"""``sublearn cache ls|prune|verify`` on a real step store (issue 28 item 4): entries linked by
a run directory are listed with it and never pruned, an entry a running run holds (its lock
taken by another process) is kept, old unused ones go, and a corrupted entry is quarantined so
the next run computes it again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sublearn.core.steps import StepPlan, link_into, step_store
from tests.conftest import run_verb

DAY = 86400


def entry(store, key: str, text: str) -> Path:
    def compute(folder: Path, fresh: bool) -> dict:
        (folder / "rows.txt").write_text(text)
        return {"files": ["rows.txt"]}

    store.run(StepPlan(), "generate", key, compute)
    return store.folder("generate", key)


def hold_lock(path: Path) -> subprocess.Popen:
    """Another process holding a step's lock, as a running run does."""
    code = (
        "import sys, time; from filelock import FileLock; lock = FileLock(sys.argv[1]); "
        "lock.acquire(); print('held', flush=True); time.sleep(120)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"held"
    return proc


def test_cache_ls_prune_verify(tmp_path):
    store = step_store(tmp_path)
    linked = entry(store, "linked", "used by a run")
    old = entry(store, "old", "unused for 40 days")
    fresh = entry(store, "fresh", "unused, recent")
    held = entry(store, "held", "unused, but a run holds it")
    link_into(linked / "rows.txt", tmp_path / "owl-run-abc" / "rows.txt")
    long_ago = time.time() - 40 * DAY
    for folder in (old, held):
        os.utime(folder / "record.json", (long_ago, long_ago))

    code, lines = run_verb(["cache", "ls", "--runs", str(tmp_path)])
    text = "\n".join(lines)
    assert code == 0 and "owl-run-abc" in text and text.count("unused") == 3
    assert "4 entries" in text

    holder = hold_lock(tmp_path / ".steps" / "generate" / "held.lock")
    try:
        code, lines = run_verb(["cache", "prune", "--older-than", "30d", "--runs", str(tmp_path)])
        assert code == 0 and "removed generate/old" in "\n".join(lines)
        assert "kept generate/held: a running run holds it" in lines
        assert not old.exists() and fresh.exists() and held.exists() and linked.exists()
        code, lines = run_verb(["cache", "prune", "--unused", "--runs", str(tmp_path)])
        assert not fresh.exists() and held.exists() and linked.exists()
    finally:
        holder.kill()
        holder.wait()

    damaged = linked / "rows.txt"
    damaged.chmod(0o644)
    damaged.write_text("changed under the store")
    code, lines = run_verb(["cache", "verify", "--runs", str(tmp_path)])
    assert code == 1 and lines[-1] == "verified 2 entries: 1 damaged"
    assert lines[0].startswith("damaged generate/linked: rows.txt; moved to ")
    assert not linked.exists() and list((tmp_path / ".steps" / ".quarantine").rglob("rows.txt"))
    rerun = []
    store.run(StepPlan(), "generate", "linked", lambda f, fresh: rerun.append(1) or _write(f))
    assert rerun == [1]  # the next run computes it again


def _write(folder: Path) -> dict:
    (folder / "rows.txt").write_text("recomputed")
    return {"files": ["rows.txt"]}


def test_bad_cache_arguments_are_one_line(tmp_path):
    code, lines = run_verb(["cache", "ls", "--runs", str(tmp_path)])
    assert code == 2 and lines[-1].startswith("error:") and "no step store here" in lines[-1]
    entry(step_store(tmp_path), "k", "x")
    code, lines = run_verb(["cache", "prune", "--runs", str(tmp_path)])
    assert code == 2 and "--unused, --older-than 30d, or both" in lines[-1]
    code, lines = run_verb(["cache", "prune", "--older-than", "soon", "--runs", str(tmp_path)])
    assert code == 2 and "--older-than soon: expected a number and d, h or m" in lines[-1]
