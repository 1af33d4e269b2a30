"""The step store managed: what it holds, what uses it, what can go, what is damaged.

``<output_dir>/.steps/<step>/<key>/`` holds each finished step (its files and ``record.json``);
run directories under ``<output_dir>`` hold hard links to those files. An entry is *used* while
some run directory links one of its files (same inode), and *in use* while a run holds its
lock. Pruning removes only entries no run directory links and no run holds; verifying re-hashes
every recorded file and moves an entry whose files no longer match into ``.steps/.quarantine``,
so the next run computes it again instead of trusting it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from sublearn.core.model_source import file_sha256
from sublearn.core.steps import RECORD

STORE = ".steps"
QUARANTINE = ".quarantine"


@dataclass(frozen=True)
class Entry:
    """One step-store entry: its size, when a run last used it, the run directories that link
    its files, and whether it finished (has a well-formed record)."""

    step: str
    key: str
    folder: Path
    size: int
    last_used: float
    finished: bool
    users: tuple[str, ...] = field(default=())


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".tmp")]


def _record(folder: Path) -> dict | None:
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(record, dict) and isinstance(record.get("digests"), dict)
    return record if ok else None


def linked_inodes(output_dir: Path) -> dict[tuple[int, int], set[str]]:
    """Each hard-linked file under the run directories, by inode: which run directories
    (relative to ``output_dir``) hold it."""
    users: dict[tuple[int, int], set[str]] = {}
    for run_dir in Path(output_dir).iterdir():
        if run_dir.name.startswith(".") or not run_dir.is_dir():
            continue
        for path in run_dir.rglob("*"):
            if not path.is_file():
                continue
            stat = path.stat()
            if stat.st_nlink > 1:
                users.setdefault((stat.st_dev, stat.st_ino), set()).add(run_dir.name)
    return users


def entries(output_dir: Path) -> list[Entry]:
    """Every entry of the store under ``output_dir``, step by step, oldest use first."""
    root = Path(output_dir) / STORE
    if not root.is_dir():
        return []
    inodes = linked_inodes(output_dir)
    out = []
    for step_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name != QUARANTINE):
        for folder in sorted(p for p in step_dir.iterdir() if p.is_dir()):
            files = _files(folder)
            record = folder / RECORD
            users: set[str] = set()
            for f in files:
                stat = f.stat()
                users |= inodes.get((stat.st_dev, stat.st_ino), set())
            stamps = [record.stat().st_mtime] if record.is_file() else []
            last = max(stamps or [f.stat().st_mtime for f in files] or [folder.stat().st_mtime])
            out.append(
                Entry(
                    step=step_dir.name,
                    key=folder.name,
                    folder=folder,
                    size=sum(f.stat().st_size for f in files),
                    last_used=last,
                    finished=_record(folder) is not None,
                    users=tuple(sorted(users)),
                )
            )
    return sorted(out, key=lambda e: (e.step, e.last_used))


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``45m`` -> seconds; one line naming the option otherwise."""
    from sublearn.core.config import ConfigError

    units = {"d": 86400, "h": 3600, "m": 60}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.replace(".", "", 1).isdigit():
        raise ConfigError(f"--older-than {text}: expected a number and d, h or m (e.g. 30d)")
    return float(number) * units[unit]


def _lock(entry: Entry) -> FileLock:
    return FileLock(entry.folder.parent / f"{entry.key}.lock")


def prune(
    output_dir: Path, older_than_s: float | None, dry_run: bool = False
) -> tuple[list[Entry], list[Entry]]:
    """Remove the entries no run directory links (and, with ``older_than_s``, unused for that
    long), skipping any a run holds: (removed, skipped because a run holds them)."""
    now = time.time()
    removed, held = [], []
    for entry in entries(output_dir):
        if entry.users or (older_than_s is not None and now - entry.last_used < older_than_s):
            continue
        lock = _lock(entry)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            held.append(entry)
            continue
        try:
            if not dry_run:
                shutil.rmtree(entry.folder)
            removed.append(entry)
        finally:
            lock.release()
        if not dry_run:
            Path(lock.lock_file).unlink(missing_ok=True)
    return removed, held


@dataclass(frozen=True)
class Damage:
    entry: Entry
    files: tuple[str, ...]  # recorded files missing or changed; () with no usable record
    moved_to: Path | None


def verify(output_dir: Path) -> tuple[int, list[Damage]]:
    """Re-hash every finished entry's files against its record; move the damaged ones (and
    finished-looking entries whose record is unreadable) into the quarantine. Returns the
    number of entries checked and the damage found. Unfinished entries (a run killed mid-step,
    resumable) are left alone."""
    checked, damage = 0, []
    for entry in entries(output_dir):
        record_path = entry.folder / RECORD
        if not record_path.is_file():
            continue
        checked += 1
        record = _record(entry.folder)
        if record is None:
            bad: tuple[str, ...] = ()
        else:
            bad = tuple(
                name
                for name, digest in record["digests"].items()
                if not (entry.folder / name).is_file() or file_sha256(entry.folder / name) != digest
            )
            if not bad:
                continue
        with _lock(entry):
            stamp = time.strftime("%Y%m%dT%H%M%S")
            target = Path(output_dir) / STORE / QUARANTINE / entry.step / f"{entry.key}-{stamp}"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(entry.folder, target)
        damage.append(Damage(entry, bad, target))
    return checked, damage
