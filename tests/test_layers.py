"""Imports go one way: each part of the package imports only the parts below it (the CLI sits
on top); and the package installs as one import name."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Each part of ``sublearn`` and the folder it lives in, bottom layer first.
LAYERS = {
    "core": ROOT / "sublearn" / "core",
    "generators": ROOT / "generators",
    "filters": ROOT / "filters",
    "eval": ROOT / "eval",
    "flows": ROOT / "flows",
}


def imported_names(path: Path) -> set[str]:
    """Every module a file imports by absolute name."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def imported(path: Path) -> set[str]:
    """The parts of sublearn a module imports (``sublearn.flows.cli`` -> ``flows``)."""
    return {n.split(".")[1] for n in imported_names(path) if n.startswith("sublearn.")}


def test_no_part_imports_a_layer_above_it():
    order = list(LAYERS)
    upward = []
    for rank, part in enumerate(order):
        for path in sorted(LAYERS[part].rglob("*.py")):
            above = imported(path) & set(order[rank + 1 :])
            upward += [f"{path.relative_to(ROOT)} -> {name}" for name in sorted(above)]
    assert upward == []


def test_the_folders_are_parts_of_one_package():
    """Code imports the parts as ``sublearn.<part>``, never by their folder's bare name."""
    bare = []
    for folder in [*LAYERS.values(), ROOT / "tests", ROOT / "benchmarks", ROOT / "scripts"]:
        for path in sorted(folder.rglob("*.py")):
            tops = {n.split(".")[0] for n in imported_names(path)}
            bare += [f"{path.relative_to(ROOT)} -> {t}" for t in sorted(tops & set(LAYERS))]
    assert bare == []


def test_the_wheel_installs_one_top_level_name(tmp_path):
    """``pip install .`` adds ``sublearn`` to site-packages and nothing else: no ``flows`` or
    ``eval`` to collide with other packages (the wheel's own record of its top-level names)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ["pyproject.toml", "README.md"]:
        shutil.copy(ROOT / name, source / name)
    for folder in ["sublearn", "flows", "generators", "filters", "eval"]:
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("sublearn-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"sublearn"}
    for part in LAYERS:
        assert f"sublearn/{part}/__init__.py" in names
    assert "sublearn/flows/cli/__init__.py" in names and "sublearn/core/config/schema.py" in names
