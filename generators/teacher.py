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
    """What every backend offers. What only some offer goes with a capability the backend
    registered (``sublearn.core.registry.Capabilities``; the config's checks and the flows ask
    ``cfg.capabilities``, never the backend's class): ``topk_logprobs`` ->
    ``generate_with_topk(prompts, seed, k)``; ``teacher_forcing`` -> ``score_with_topk``;
    ``judge_logprobs`` -> ``first_token_top(prompts, k)``; ``local_weights`` -> ``model`` and
    ``tokenizer``; ``needs_server`` -> ``usage`` (the tokens the server reported)."""

    def generate(self, prompts: Sequence[ChatPrompt], seed: int) -> list[str]:
        """Completions for ``prompts``, sampled with the teacher's sampling config and ``seed``."""

    def lineage(self) -> dict:
        """What identifies this teacher: model, revision, adapter, sampling, backend."""

    def completion_tokens(self, completions: Sequence[str]) -> int:
        """Output tokens of these completions, just generated (a server: what it reported)."""


def tokens_of(tokenizer, completions: Sequence[str]) -> int:
    """Output tokens of completions by the teacher's own tokenizer."""
    return sum(len(ids) for ids in tokenizer(list(completions))["input_ids"])


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
    from sublearn.generators.output_formats import output_format

    served = cfg.capabilities.needs_server
    server = {"base_url": cfg.server.url} if served else {}
    if served and cfg.server.mode == "batch":
        server["mode"] = "batch"  # live rows keep the lineage (and keys) they always had
    return {
        "backend": backend,
        **source.lineage(),
        **server,
        **adapter_identity(cfg.adapter, cfg.adapter_revision),
        "dtype": "server" if served else cfg.precision().dtype,
        "sampling": {**cfg.sampling.model_dump(), **cfg.decoding.model_dump()},
        **({"grammar": answer_form.gbnf} if (answer_form := output_format(cfg.decoding)) else {}),
    }
