"""Plug-in points: one table per component type, read by both the config and the flows.

A config's allowed values (``dataset.kind``, ``teacher.backend``, the sections under
``filters:``) are the names in these tables, and the flows find what to run by the same
names, so a new kind, backend, filter or evaluation metric is one module that registers
itself and nothing else. Built-in components are named by ``"module:attribute"`` and
imported on first use (vLLM and the openai client load only when chosen). A plug-in module is
loaded by naming it in a config's ``plugins:`` list or by advertising it under the
``sublearn.plugins`` entry-point group of an installed distribution (as inspect_ai finds
model APIs and scorers).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from sublearn.core.errors import UserError

ENTRY_POINT_GROUP = "sublearn.plugins"


class PluginError(UserError, ValueError):
    """A plug-in that cannot be loaded, or a name no table holds: one line naming it."""


@dataclass(frozen=True)
class Capabilities:
    """What a teacher backend can do; the config's checks and the flows both ask these,
    never the backend's name or class."""

    local_weights: bool = False  # students fine-tune its weights; its dtype is ours to pick
    adapters: bool = False  # loads a LoRA adapter (a fine-tuned trait)
    topk_logprobs: bool = False  # records the top-k log-probs of each sampled token
    teacher_forcing: bool = False  # scores given tokens' top-k (paired students)
    judge_logprobs: bool = False  # first-token top log-probs (the trait judge)
    constrained_numbers: bool = False  # decodes only digits and separators, stops after N
    constrained_format: bool = False  # decodes under a kind's grammar (code fence, CoT tags)
    needs_server: bool = False  # talks to a server (``server:``), has no weights here


@dataclass(frozen=True)
class Entry:
    """One registered component: its name, what builds it, and what the table keeps
    beside it (a kind's or filter's settings model, a backend's capabilities, the modules
    whose code its outputs depend on)."""

    name: str
    target: str | Any
    meta: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        if not isinstance(self.target, str):
            return self.target
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)

    @property
    def module(self) -> str:
        if isinstance(self.target, str):
            return self.target.partition(":")[0]
        return self.target.__module__


class Registry:
    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, target: str | Any, **meta: Any) -> Entry:
        """Register ``target`` under ``name``; registering the same target again is a no-op
        (a module imported twice), another target under a taken name an error."""
        known = self._entries.get(name)
        if known is not None and _same(known.target, target):
            return known
        if known is not None:
            raise PluginError(f"{self.what} {name!r}: already registered by {known.module}")
        entry = Entry(name, target, meta)
        self._entries[name] = entry
        return entry

    def register(self, name: str, **meta: Any) -> Callable:
        """The decorator form of ``add``: ``@KINDS.register("toy", settings=ToyDataset)``."""

        def decorate(target):
            self.add(name, target, **meta)
            return target

        return decorate

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def entries(self) -> tuple[Entry, ...]:
        return tuple(self._entries.values())

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self._entries)
            raise PluginError(
                f"unknown {self.what} {name!r} (known: {known}; a plug-in registers more)"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries


def _same(a: Any, b: Any) -> bool:
    if a is b or a == b:
        return True
    names = [f"{x.__module__}:{x.__qualname__}" for x in (a, b) if hasattr(x, "__qualname__")]
    return len(names) == 2 and names[0] == names[1]


KINDS = Registry("dataset kind")
BACKENDS = Registry("backend")
FILTERS = Registry("filter")
METRICS = Registry("metric")

_loaded: set[str] = set()


def load_plugins(modules: tuple[str, ...] = ()) -> None:
    """Import the installed distributions' plug-ins (once) and ``modules`` (a config's
    ``plugins:``); their imports register what they add."""
    if ENTRY_POINT_GROUP not in _loaded:
        _loaded.add(ENTRY_POINT_GROUP)
        for point in entry_points(group=ENTRY_POINT_GROUP):
            _import(point.value.partition(":")[0], f"entry point {point.name!r}")
    for module in modules:
        _import(module, "plugins")


def load_plugins_of(data: object) -> None:
    """The plug-ins a config's raw data names (its ``plugins:`` list) and the installed ones,
    loaded before the rest of it is validated; a malformed list is left to validation."""
    plugins = data.get("plugins") if isinstance(data, dict) else None
    named = isinstance(plugins, (list, tuple)) and all(isinstance(p, str) for p in plugins)
    load_plugins(tuple(plugins) if named else ())


def _import(module: str, where: str) -> None:
    if module in _loaded:
        return
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise PluginError(f"{where}: cannot import plug-in {module!r} ({err})") from None
    _loaded.add(module)
