"""Atomic writes: a file either holds its complete new content or its old one, never a part.

Every output goes to a temporary file in the same folder and is renamed into place, so a crash
or Ctrl-C mid-write leaves the previous version (or nothing) behind.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import polars as pl

from sublearn.core.errors import DataError


@cache
def file_mode() -> int:
    """The mode a plain ``open()`` would give a new file: 0o666 less the umask (read from
    /proc, since setting the umask to read it races with other threads)."""
    try:
        with open("/proc/self/status") as fh:
            umask = next(int(line.split()[1], 8) for line in fh if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def _temp_beside(path: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


def _seal(tmp: Path) -> None:
    """Give a finished temporary file its normal mode and flush it to disk before renaming."""
    os.chmod(tmp, file_mode())
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())


DISK_FULL = {
    "No space left on device": errno.ENOSPC,
    "File too large": errno.EFBIG,
    "Disk quota exceeded": errno.EDQUOT,
}


def _write_to(write: Callable[[Path], None], tmp: Path, path: Path) -> None:
    """``write(tmp)``; a full disk, in whatever exception the writer raised (polars wraps
    its own), becomes the OSError it is, naming the file being written."""
    try:
        write(tmp)
    except OSError as err:
        raise OSError(err.errno, err.strerror or str(err), str(path)) from None
    except Exception as err:
        code = next((c for text, c in DISK_FULL.items() if text in str(err)), None)
        if code is None:
            raise
        raise OSError(code, os.strerror(code), str(path)) from None


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path)
    try:
        _write_to(write, tmp, path)
        _seal(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_outputs(folder: Path, writers: dict[str, Callable[[Path], None]]) -> Path:
    """Write a command's outputs as a set: every file is written in full before any is put in
    place, so a failure never leaves a new file beside an old one from an earlier run."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: exists and is not a folder; choose another --out")
    folder.mkdir(parents=True, exist_ok=True)
    done: dict[Path, Path] = {}
    try:
        for name, write in writers.items():
            tmp = _temp_beside(folder / name)
            done[tmp] = folder / name
            _write_to(write, tmp, folder / name)
            _seal(tmp)
        for tmp, path in done.items():
            os.replace(tmp, path)
    finally:
        for tmp in done:
            tmp.unlink(missing_ok=True)
    return folder


def parquet_writer(frame: pl.DataFrame) -> Callable[[Path], None]:
    return frame.write_parquet


def json_writer(data: object) -> Callable[[Path], None]:
    return lambda tmp: tmp.write_text(
        json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    )


def write_parquet(frame: pl.DataFrame, path: Path) -> Path:
    return atomic_write(path, frame.write_parquet)


def write_text(text: str, path: Path) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(data: object, path: Path) -> Path:
    return atomic_write(path, json_writer(data))


def read_parquet(path: Path, required: tuple[str, ...] = ()) -> pl.DataFrame:
    """Read a parquet file, failing with one line that names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        frame = pl.read_parquet(path)
    except Exception as err:  # polars raises several types for unreadable files
        raise DataError(f"{path}: not a readable parquet file ({type(err).__name__})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame


def write_figure(fig, path: Path) -> Path:
    """Save a matplotlib figure as PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    finally:
        plt.close(fig)
