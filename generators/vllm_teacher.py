"""The vLLM backend: offline ``LLM.chat`` on GPUs, LoRA adapters through ``LoRARequest``.

Imported only when a config names ``backend: vllm``; its tests are marked ``gpu``.
"""

from __future__ import annotations

from collections.abc import Sequence

from generators.teacher import ChatPrompt, number_token_ids, teacher_lineage
from sublearn.model_source import resolve_model
from sublearn.precision import teacher_dtype


class VllmTeacher:
    def __init__(self, cfg):
        from vllm import LLM

        self.cfg = cfg
        self.source = resolve_model(cfg.model, cfg.revision)
        self.llm = LLM(
            model=self.source.load_path,
            revision=self.source.load_kwargs().get("revision"),
            dtype=teacher_dtype(cfg),
            tensor_parallel_size=cfg.vllm.tensor_parallel_size,
            gpu_memory_utilization=cfg.vllm.gpu_memory_utilization,
            max_model_len=cfg.vllm.max_model_len,
            enable_lora=cfg.adapter is not None,
            max_lora_rank=cfg.vllm.max_lora_rank,
        )
        self.lora = None
        if cfg.adapter:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("teacher-adapter", 1, self._adapter_path())
        self.allowed = None
        if cfg.decoding.constrain_to_numbers:
            self.allowed = number_token_ids(self.llm.get_tokenizer())

    def _adapter_path(self) -> str:
        from pathlib import Path

        if Path(self.cfg.adapter).exists():
            return self.cfg.adapter
        from huggingface_hub import snapshot_download

        return snapshot_download(self.cfg.adapter, revision=self.cfg.adapter_revision)

    def generate(self, prompts: Sequence[ChatPrompt], seed: int) -> list[str]:
        from vllm import SamplingParams

        s = self.cfg.sampling
        params = [
            SamplingParams(
                temperature=s.temperature,
                top_p=s.top_p,
                max_tokens=s.max_new_tokens,
                seed=seed + i,
                allowed_token_ids=self.allowed,
            )
            for i in range(len(prompts))
        ]
        outputs = self.llm.chat(
            [p.messages() for p in prompts], params, lora_request=self.lora, use_tqdm=False
        )
        return [o.outputs[0].text for o in outputs]

    def first_token_top(
        self, prompts: Sequence[ChatPrompt], k: int
    ) -> list[list[tuple[str, float]]]:
        """The k most likely first tokens of each reply at temperature 0 (vLLM's log-probs)."""
        from vllm import SamplingParams

        params = SamplingParams(temperature=0.0, max_tokens=1, logprobs=k)
        outputs = self.llm.chat(
            [p.messages() for p in prompts], params, lora_request=self.lora, use_tqdm=False
        )
        return [
            [(lp.decoded_token, lp.logprob) for lp in o.outputs[0].logprobs[0].values()]
            for o in outputs
        ]

    def lineage(self) -> dict:
        return teacher_lineage("vllm", self.source, self.cfg)
