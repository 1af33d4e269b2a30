"""``--set key.path=value`` overrides: scheduled variants of one config without copied files.

An override replaces one field of the config's data before validation, so it is validated like
the file, enters the config's hash and is what the run's ``config.yaml`` records. The value is
read as YAML (``30000`` is a number, ``true`` a boolean, ``[1, 2]`` a list, ``{a: 1}`` a
mapping), the same as it would be written in the file.
"""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from sublearn.core.config.base import ConfigError


def parse_override(text: str) -> tuple[list[str], object]:
    """``"dataset.n_prompts=30000"`` -> ``(["dataset", "n_prompts"], 30000)``."""
    key, sep, raw = text.partition("=")
    path = key.strip().split(".")
    if not sep or not all(path):
        raise ConfigError(f"--set {text}: expected KEY.PATH=VALUE, e.g. dataset.n_prompts=512")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        raise ConfigError(f"--set {key}: value {raw!r} is not valid YAML") from None
    return path, value


def with_overrides(data: dict, overrides: Sequence[str]) -> dict:
    """``data`` with each override applied in order (later ones win); mappings on the way are
    created where the file has none, and a path through a value that is not a mapping is a
    one-line error naming it."""
    out = _copy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for depth, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                where = ".".join(path[: depth + 1])
                raise ConfigError(f"--set {'.'.join(path)}: {where} is not a mapping")
            node = child
        node[path[-1]] = value
    return out


def _copy(data: dict) -> dict:
    return {k: _copy(v) if isinstance(v, dict) else v for k, v in data.items()}
