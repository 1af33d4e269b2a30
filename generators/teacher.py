"""One small interface for teachers: a batch of chat prompts in, completions out.

Backends are picked by the config (``generators.backends``) and imported only when chosen, so
vLLM is never needed on a CPU machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sublearn.core.chat import ChatPrompt

NUMBER_CHARS = frozenset("0123456789 ,;\n[]()")


class Teacher(Protocol):
    def generate(self, prompts: Sequence[ChatPrompt], seed: int) -> list[str]:
        """Completions for ``prompts``, sampled with the teacher's sampling config and ``seed``."""

    def lineage(self) -> dict:
        """What identifies this teacher: model, revision, adapter, sampling, backend."""


def number_token_ids(tokenizer) -> list[int]:
    """Vocabulary entries made only of digits, separators and brackets (plus end of turn)."""
    allowed = [
        token_id
        for token_id in range(len(tokenizer))
        if (text := tokenizer.decode([token_id])) and set(text) <= NUMBER_CHARS
    ]
    return sorted({*allowed, tokenizer.eos_token_id})


def teacher_lineage(backend: str, source, cfg) -> dict:
    """What identifies a teacher's outputs: backend, weights, adapter, dtype and sampling."""
    from sublearn.core.model_source import adapter_identity
    from sublearn.core.precision import teacher_dtype

    server = {"base_url": cfg.server.url} if backend == "openai" else {}
    return {
        "backend": backend,
        **source.lineage(),
        **server,
        **adapter_identity(cfg.adapter, cfg.adapter_revision),
        "dtype": "server" if backend == "openai" else teacher_dtype(cfg),
        "sampling": {**cfg.sampling.model_dump(), **cfg.decoding.model_dump()},
    }
