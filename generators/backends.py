"""The teacher backend a config names, imported only when chosen (vLLM only where it runs;
the openai client only for servers)."""

from __future__ import annotations

from sublearn.generators.teacher import Teacher


def load_teacher(cfg) -> Teacher:
    """Build the backend named by a ``Teacher`` config."""
    if cfg.backend == "openai":
        from sublearn.generators.openai_teacher import OpenAITeacher

        return OpenAITeacher(cfg)
    if cfg.backend == "vllm":
        from sublearn.generators.vllm_teacher import VllmTeacher

        return VllmTeacher(cfg)
    if cfg.backend == "torch":
        from sublearn.generators.torch_teacher import TorchTeacher

        return TorchTeacher(cfg)
    from sublearn.generators.hf_teacher import TransformersTeacher

    return TransformersTeacher(cfg)
