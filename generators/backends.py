"""The teacher backend a config names, found in the backends table
(``sublearn.core.registry.BACKENDS``) and imported only when chosen: vLLM only where it
runs, the openai client only for servers, a plug-in's backend from its own module."""

from __future__ import annotations

from sublearn.core.registry import BACKENDS
from sublearn.generators.teacher import Teacher


def load_teacher(cfg) -> Teacher:
    """Build the backend named by a ``Teacher`` config (or a judge's ``ModelRef``)."""
    return BACKENDS.get(cfg.backend).load()(cfg)
