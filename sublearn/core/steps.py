"""Step records: every pipeline step's outputs, cached by a hash of its inputs and its code.

A step's key hashes the config fields that decide its output (throughput knobs left out), the
digests of the upstream outputs it reads, and the source of the modules that compute it. Its
files live in ``<output_dir>/.steps/<step>/<key>/`` and its ``record.json`` is written last, so a
step either has a complete record or counts as not done. A run directory holds hard links to
the files of the steps it used: changing a filter gives a new run directory but reuses the
generation step, which is the expensive one.

Why not Prefect's own task cache: it pickles return values, so a cached path whose file was
deleted is still a hit, and it cannot say whether an upstream step is cached before running it,
which ``--only`` needs.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import logging
import os
import shutil
import stat
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import ClassVar

from filelock import FileLock

from sublearn.core.errors import UserError
from sublearn.core.model_source import file_sha256, file_stamp
from sublearn.core.runio import write_json

DATASET_STEPS = ("prompts", "teacher", "generate", "filter", "publish")
EXPERIMENT_STEPS = ("rescore", "finetune", "evaluate", "report")
STEPS = DATASET_STEPS + EXPERIMENT_STEPS
RECORD = "record.json"
STORE_ID = "store-id"

log = logging.getLogger("sublearn")


class StepError(UserError, RuntimeError):
    """A step cannot run as asked (an upstream output is missing); one line for the user."""


PROJECT_PACKAGE = "sublearn"


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# CPython 3.11's parser keeps its recursion counter per interpreter, not per thread: two task
# threads parsing at once fail with "SystemError: AST constructor recursion depth mismatch".
# The lock covers our parses; a library's parse in another thread can still collide (seen once
# under heavy load), so a parse that hits it is tried again.
_PARSING = threading.Lock()
_PARSE_TRIES = 3


def _parse(source: str):
    import ast

    for _ in range(_PARSE_TRIES - 1):
        try:
            with _PARSING:
                return ast.parse(source)
        except SystemError as err:
            if "recursion depth mismatch" not in str(err):
                raise
    with _PARSING:
        return ast.parse(source)


@cache
def _imported_modules(name: str) -> frozenset[str]:
    """The project modules that module ``name`` imports anywhere in its source (lazy imports
    inside functions included)."""
    import ast

    source = inspect.getsource(importlib.import_module(name))
    tree = _parse(source)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return frozenset(m for m in found if m.split(".")[0] == PROJECT_PACKAGE and _is_module(m))


def code_closure(modules: Iterable[str]) -> list[str]:
    """The modules and every project module they import, transitively: a step's code is all
    of it, so editing a helper it calls invalidates its cache too."""
    todo, seen = list(modules), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += _imported_modules(name) - seen
    return sorted(seen)


def code_digest(modules: Iterable[str]) -> str:
    """The source of the modules that compute a step, and of what they import."""
    digest = hashlib.sha256()
    for name in code_closure(modules):
        digest.update(name.encode())
        digest.update(inspect.getsource(importlib.import_module(name)).encode())
    return digest.hexdigest()


def step_key(step: str, inputs: dict, modules: Iterable[str]) -> str:
    blob = json.dumps(
        {"step": step, "inputs": inputs, "code": code_digest(modules)},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


class Step(ABC):
    """One cached step, declared in one place: its ``name``, the ``inputs`` that decide its
    output (its signature: config fields, upstream digests, the model and its precision), the
    ``modules`` whose source computes it, and ``compute``. Subclasses are frozen dataclasses
    written beside the function they call, so what a step reads and what keys it are edited
    together (distilabel's signature mixin is the model).

    ``modules`` lists code on purpose rather than taking the declaring module: the generate
    step lives in the dataset flow, and editing the filter's plumbing there must not regenerate.
    """

    name: ClassVar[str]
    code: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def inputs(self) -> dict:
        """What decides the output, as JSON-able values."""

    def modules(self) -> tuple[str, ...]:
        """The modules that compute the output (their project imports are followed)."""
        return self.code

    @abstractmethod
    def compute(self, folder: Path, fresh: bool) -> dict:
        """Write the step's files into ``folder``; return ``{"files": [names], **figures}``."""

    def key(self) -> str:
        return step_key(self.name, self.inputs(), self.modules())


@dataclass(frozen=True)
class StepPlan:
    """Which steps to recompute: ``--only`` one step, ``--from`` one step on, ``--force``
    named steps; ``--to`` stops after a step (a schedule that only produces the dataset).
    Steps upstream of ``--only``/``--from`` must come from the cache."""

    only: str | None = None
    start: str | None = None
    force: frozenset[str] = frozenset()
    stop: str | None = None

    def __post_init__(self) -> None:
        named = [("--only", self.only), ("--from", self.start), ("--to", self.stop)]
        named += [("--force", name) for name in sorted(self.force)]
        for option, name in named:
            if name is not None and name not in STEPS:
                raise StepError(f"{option}: unknown step {name!r} (steps: {', '.join(STEPS)})")
        if self.only and self.start:
            raise StepError("--only and --from: give one of them, not both")

    def forced(self, step: str) -> bool:
        if step in self.force or step == self.only:
            return True
        return self.start is not None and STEPS.index(step) >= STEPS.index(self.start)

    def runs(self, step: str) -> bool:
        """False for the steps after ``--only`` or ``--to``: they are not run at all."""
        last = min(STEPS.index(s) for s in (self.only, self.stop, STEPS[-1]) if s)
        return STEPS.index(step) <= last

    def upstream_only(self, step: str) -> bool:
        """True where the step must be reused: it lies before ``--only``/``--from``."""
        anchor = self.only or self.start
        return anchor is not None and STEPS.index(step) < STEPS.index(anchor)


class StepStore:
    """Finished steps on disk. A record is trusted only while its files still hold what it
    recorded: size and modification time are compared on every reuse, the full sha256 when
    they differ, and a changed file makes the step run again. Store files are read-only and
    each step key has a lock, so two runs of one config compute a step once."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def identity(self) -> str:
        """The store's id, drawn once when the store is made: what every process that uses the
        store (a Ray worker on another node) must see, or it is looking at another store."""
        path = self.root / STORE_ID
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            with open(path, "x") as fh:  # the first process to get here draws it
                fh.write(uuid.uuid4().hex)
        except FileExistsError:
            pass
        return path.read_text().strip()

    def check_identity(self, expected: str) -> None:
        """One line when this process sees a different store than the flow that sent it."""
        path = self.root / STORE_ID
        seen = path.read_text().strip() if path.is_file() else None
        if seen != expected:
            import socket

            what = f"another step store (id {seen})" if seen else "no step store"
            raise StepError(
                f"{self.root}: {socket.gethostname()} sees {what} here, not the run's "
                f"(id {expected}); put output_dir on storage every node shares (NFS or the like)"
            )

    def folder(self, step: str, key: str) -> Path:
        return self.root / step / key

    def lock(self, step: str, key: str) -> FileLock:
        self.root.joinpath(step).mkdir(parents=True, exist_ok=True)
        return FileLock(self.root / step / f"{key}.lock")

    def record(self, step: str, key: str) -> dict | None:
        """The step's record when it finished and its files still hold what it recorded."""
        folder = self.folder(step, key)
        path = folder / RECORD
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not well_formed(record):
            log.warning("step %s: its record %s is malformed; recomputing", step, path)
            path.unlink(missing_ok=True)
            return None
        stamps = dict(record.get("stamps", {}))
        changed = []
        for name in record["files"]:
            file = folder / name
            if not file.is_file():
                return None
            if stamps.get(name) == file_stamp(file):
                continue
            if file_sha256(file) != record["digests"].get(name):
                changed.append(name)
            stamps[name] = file_stamp(file)
        if changed:
            log.warning(
                "step %s: cached %s changed since it was recorded; recomputing",
                step,
                ", ".join(changed),
            )
            path.unlink(missing_ok=True)
            return None
        if stamps != record.get("stamps"):  # same content, touched: remember the new stamps
            record["stamps"] = stamps
            write_json(record, path)
        return record

    def run(
        self,
        plan: StepPlan,
        step: str,
        key: str,
        compute: Callable[[Path, bool], dict],
    ) -> tuple[dict, str]:
        """Reuse the step's record or compute it; returns (record, "reused" | "ran").

        ``compute(folder, fresh)`` writes the step's files into ``folder`` and returns
        ``{"files": [names], **figures}``; ``fresh`` is True when a finished step is forced,
        so a step that keeps partial work (generation shards) starts over; an unfinished one
        (killed mid-way) resumes even under ``--only``/``--force``.
        """
        with self.lock(step, key):
            record = self.record(step, key)
            forced = plan.forced(step)
            if record is not None and not forced:
                os.utime(self.folder(step, key) / RECORD)  # the record's time: its last use
                return record, "reused"
            if plan.upstream_only(step) and record is None:
                anchor = f"--only {plan.only}" if plan.only else f"--from {plan.start}"
                raise StepError(
                    f"{anchor}: step '{step}' has no cached output for this config; "
                    "run it first (without --only/--from)"
                )
            folder = self.folder(step, key)
            (folder / RECORD).unlink(missing_ok=True)
            folder.mkdir(parents=True, exist_ok=True)
            for stale in folder.rglob(".*.tmp"):  # half-written by a run that was killed
                stale.unlink(missing_ok=True)
            started = time.perf_counter()
            result = compute(folder, forced and record is not None)
            for name in result["files"]:
                read_only(folder / name)
            record = {
                **result,
                "step": step,
                "key": key,
                "seconds": round(time.perf_counter() - started, 2),
                "digests": {name: file_sha256(folder / name) for name in result["files"]},
                "stamps": {name: file_stamp(folder / name) for name in result["files"]},
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            write_json(record, folder / RECORD)
            return record, "ran"


def well_formed(record: object) -> bool:
    """A record this store wrote: file names with their digests (and optional stamps). Any
    other shape (``{}``, ``[1]``, a hand edit) counts as a corrupt entry, not a crash."""
    if not isinstance(record, dict):
        return False
    files, digests = record.get("files"), record.get("digests")
    stamps = record.get("stamps", {})
    return (
        isinstance(files, list)
        and all(isinstance(name, str) for name in files)
        and isinstance(digests, dict)
        and isinstance(stamps, dict)
    )


def read_only(path: Path) -> None:
    """Clear the write bits: a tool that rewrites a run directory's file in place (they are
    hard links into the store) fails instead of changing the cache under every run."""
    mode = path.stat().st_mode
    path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def step_store(output_dir: Path) -> StepStore:
    """The step cache shared by every run under ``output_dir``."""
    return StepStore(Path(output_dir) / ".steps")


_COPIED: set[tuple[int, int]] = set()  # (store device, run device) pairs already reported


def link_into(src: Path, dst: Path) -> Path:
    """Place ``src`` at ``dst`` by hard link (a copy across file systems, said once per pair
    of file systems), atomically."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() and os.path.samefile(src, dst):
        return dst
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.link")
    try:
        os.link(src, tmp)
    except OSError as err:
        devices = (src.stat().st_dev, dst.parent.stat().st_dev)
        if devices not in _COPIED:
            _COPIED.add(devices)
            log.warning(
                "%s: cannot hard-link the step store's files here (%s); copying them instead "
                "(more disk, and `sublearn cache ls` cannot see these runs use the store)",
                dst.parent,
                err.strerror or err,
            )
        shutil.copy2(src, tmp)
    try:
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst
