"""Imports go one way: each package imports only the layers below it (the CLI sits on top)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("sublearn", "generators", "filters", "eval", "flows")
# ``python -m sublearn`` starts the command that lives in the top layer; nothing imports it.
ENTRY_POINTS = {ROOT / "sublearn" / "__main__.py"}


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
    return names


def test_no_package_imports_a_layer_above_it():
    upward = []
    for rank, package in enumerate(LAYERS):
        for path in sorted((ROOT / package).glob("*.py")):
            if path in ENTRY_POINTS:
                continue
            above = imported(path) & set(LAYERS[rank + 1 :])
            upward += [f"{path.relative_to(ROOT)} -> {name}" for name in sorted(above)]
    assert upward == []
