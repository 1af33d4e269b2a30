"""The teacher backend a config names, imported only when chosen (vLLM only where it runs;
the openai client only for servers)."""

from __future__ import annotations

from generators.teacher import Teacher


def load_teacher(cfg) -> Teacher:
    """Build the backend named by a ``Teacher`` config."""
    if cfg.backend == "openai":
        from generators.openai_teacher import OpenAITeacher

        return OpenAITeacher(cfg)
    if cfg.backend == "vllm":
        from generators.vllm_teacher import VllmTeacher

        return VllmTeacher(cfg)
    if cfg.backend == "torch":
        from generators.torch_teacher import TorchTeacher

        return TorchTeacher(cfg)
    from generators.hf_teacher import TransformersTeacher

    return TransformersTeacher(cfg)
