"""The torch backend: the transformers backend's model (same weights, adapter, dtype and
device), sampled by sublearn's own decode loop (``generators.decode_loop``) instead of
``model.generate``; the CPU default, several times faster on the numbers workload."""

from __future__ import annotations

from collections.abc import Sequence

from sublearn.core.chat import ChatPrompt
from sublearn.generators.decode_loop import Decoded, DecodeLoop
from sublearn.generators.hf_teacher import TransformersTeacher
from sublearn.generators.teacher import teacher_lineage


class TorchTeacher(TransformersTeacher):
    def __init__(self, cfg):
        super().__init__(cfg)
        self.loop = DecodeLoop(self.model, max_rows=cfg.batch_size)

    def _decode(
        self,
        prompts: Sequence[ChatPrompt],
        seed: int,
        topk: int = 0,
        forced: list[list[int]] | None = None,
    ) -> list[Decoded]:
        s = self.cfg.sampling
        ids = [
            self.tokenizer.apply_chat_template(
                p.messages(), add_generation_prompt=True, tokenize=True, return_dict=False
            )
            for p in prompts
        ]
        return self.loop.generate(
            ids,
            seed,
            max_new_tokens=s.max_new_tokens,
            temperature=s.temperature,
            top_p=s.top_p,
            eos=self.tokenizer.eos_token_id,
            allowed=self.allowed if self.cfg.decoding.constrain_to_numbers else None,
            stops=self.stops,
            topk=topk,
            forced=forced,
        )

    def generate(self, prompts: Sequence[ChatPrompt], seed: int) -> list[str]:
        return [
            self.tokenizer.decode(row.ids, skip_special_tokens=True)
            for row in self._decode(prompts, seed)
        ]

    def generate_with_topk(self, prompts: Sequence[ChatPrompt], seed: int, k: int) -> list[dict]:
        return [
            {
                "completion": self.tokenizer.decode(row.ids, skip_special_tokens=True),
                "completion_ids": row.ids,
                "topk_ids": row.topk_ids,
                "topk_logprobs": row.topk_logprobs,
            }
            for row in self._decode(prompts, seed, topk=k)
        ]

    def score_with_topk(
        self, prompts: Sequence[ChatPrompt], completion_ids: Sequence[Sequence[int]], k: int
    ) -> list[dict]:
        """This teacher's top-k at every token of completions it did not write (teacher-forced,
        under its own constraint and stop rule): the targets of a paired arm, and where two
        teachers would choose differently."""
        forced = [list(ids) for ids in completion_ids]
        return [
            {"topk_ids": row.topk_ids, "topk_logprobs": row.topk_logprobs}
            for row in self._decode(prompts, 0, topk=k, forced=forced)
        ]

    def lineage(self) -> dict:
        return teacher_lineage("torch", self.source, self.cfg)
