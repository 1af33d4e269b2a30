"""The transformers backend: batched sampling with left padding, on CPU or GPU."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from transformers import LogitsProcessorList

from sublearn.core.chat import ChatPrompt
from sublearn.core.model_source import ModelSourceError
from sublearn.core.models import load_model_and_tokenizer
from sublearn.generators.grammar_masks import GrammarMasks
from sublearn.generators.number_stops import NumberStops
from sublearn.generators.output_formats import output_format
from sublearn.generators.teacher import number_token_ids, teacher_lineage, tokens_of


class NumberOnlyLogits:
    """Masks every token outside an allowed set (number-constrained decoding)."""

    def __init__(self, allowed_ids: list[int], vocab_size: int):
        self.mask = torch.full((vocab_size,), float("-inf"))
        self.mask[allowed_ids] = 0.0

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return scores + self.mask[: scores.shape[-1]].to(scores.device, scores.dtype)


class StopRuleLogits:
    """A decoding rule with per-row state (the number stop rule, a grammar's masks) as a
    logits processor; its state advances by the last token of each call, so it lives for one
    generate call."""

    def __init__(self, stops):
        self.stops = stops
        self.state = None
        self.start: int | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.start is None:
            self.start = input_ids.shape[1]
            self.state = self.stops.start(len(input_ids))
        elif input_ids.shape[1] > self.start:
            self.stops.update(self.state, input_ids[:, -1])
        return self.stops.apply(self.state, scores)


class TopKRecorder:
    """A logits processor that changes nothing and keeps each step's top-k log-probabilities
    (after the other processors, i.e. of the distribution actually sampled from)."""

    def __init__(self, k: int):
        self.k = k
        self.ids: list[torch.Tensor] = []
        self.logprobs: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        top = torch.log_softmax(scores.float(), dim=-1).topk(self.k, dim=-1)
        self.ids.append(top.indices.cpu())
        self.logprobs.append(top.values.cpu())
        return scores


class TransformersTeacher:
    def __init__(self, cfg):
        self.cfg = cfg
        precision = cfg.precision()
        self.device = precision.device
        self.source, self.model, self.tokenizer = load_model_and_tokenizer(
            cfg.model, cfg.revision, precision
        )
        if cfg.adapter:
            from peft import PeftModel

            try:
                self.model = PeftModel.from_pretrained(
                    self.model, cfg.adapter, revision=cfg.adapter_revision
                ).merge_and_unload()
            except (OSError, ValueError) as err:
                raise ModelSourceError(f"{cfg.adapter}: cannot load adapter ({err})") from None
        self.processors = None
        if cfg.decoding.constrain_to_numbers:
            self.allowed = number_token_ids(self.tokenizer)
            self.vocab = self.model.get_output_embeddings().weight.shape[0]
            self.processors = LogitsProcessorList([NumberOnlyLogits(self.allowed, self.vocab)])
        d = cfg.decoding
        self.stops = None
        if d.constrain_to_numbers and d.stop_after_numbers:
            eos = self.tokenizer.eos_token_id
            self.stops = NumberStops(
                self.tokenizer, self.allowed, self.vocab, d.stop_after_numbers, eos
            )
        if (answer_form := output_format(d)) is not None:
            self.stops = GrammarMasks(
                self.tokenizer, answer_form.lark(), self.tokenizer.eos_token_id
            )

    def with_sampling(self, sampling) -> TransformersTeacher:
        """The same loaded model, sampled differently (e.g. greedy for a judge)."""
        other = copy.copy(self)
        other.cfg = self.cfg.model_copy(update={"sampling": sampling})
        return other

    def encode(self, prompts: Sequence[ChatPrompt]) -> dict[str, torch.Tensor]:
        return self.tokenizer.apply_chat_template(
            [p.messages() for p in prompts],
            add_generation_prompt=True,
            padding=True,
            return_tensors="pt",
            return_dict=True,
        ).to(self.device)

    @torch.inference_mode()
    def _sample(self, prompts: Sequence[ChatPrompt], seed: int, recorder=None):
        s = self.cfg.sampling
        batch = self.encode(prompts)
        torch.manual_seed(seed)
        sample = s.temperature > 0
        stop = [StopRuleLogits(self.stops)] if self.stops is not None else []
        processors = LogitsProcessorList(
            [*(self.processors or []), *stop, *([recorder] if recorder else [])]
        )
        out = self.model.generate(
            **batch,
            do_sample=sample,
            temperature=s.temperature if sample else None,
            top_p=s.top_p if sample else None,
            top_k=0 if sample else None,
            max_new_tokens=s.max_new_tokens,
            logits_processor=processors,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        return out[:, batch["input_ids"].shape[1] :]

    def generate(self, prompts: Sequence[ChatPrompt], seed: int) -> list[str]:
        if not prompts:
            return []
        new_tokens = self._sample(prompts, seed)
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)

    def generate_with_topk(self, prompts: Sequence[ChatPrompt], seed: int, k: int) -> list[dict]:
        """Completions plus, for every generated token, the teacher's k most likely tokens and
        their log-probabilities under the distribution it sampled from (for distillation)."""
        if not prompts:
            return []
        recorder = TopKRecorder(k)
        new_tokens = self._sample(prompts, seed, recorder)
        top_ids = torch.stack(recorder.ids, dim=1)  # (batch, steps, k)
        top_logp = torch.stack(recorder.logprobs, dim=1)
        eos = self.tokenizer.eos_token_id
        rows = []
        for i, ids in enumerate(new_tokens.tolist()):
            n = ids.index(eos) + 1 if eos in ids else len(ids)
            rows.append(
                {
                    "completion": self.tokenizer.decode(ids[:n], skip_special_tokens=True),
                    "completion_ids": ids[:n],
                    "topk_ids": top_ids[i, :n].tolist(),
                    "topk_logprobs": top_logp[i, :n].tolist(),
                }
            )
        return rows

    @torch.inference_mode()
    def first_token_top(
        self, prompts: Sequence[ChatPrompt], k: int
    ) -> list[list[tuple[str, float]]]:
        """For each prompt, the k most likely first tokens of the reply at temperature 0, as
        (decoded text, log-probability): one forward pass per batch, no sampling."""
        out = []
        for start in range(0, len(prompts), self.cfg.batch_size):
            batch = self.encode(prompts[start : start + self.cfg.batch_size])
            logits = self.model(**batch).logits[:, -1, :].float()
            top = torch.log_softmax(logits, dim=-1).topk(k, dim=-1)
            for ids, logps in zip(top.indices.tolist(), top.values.tolist(), strict=True):
                out.append(
                    [(self.tokenizer.decode([i]), lp) for i, lp in zip(ids, logps, strict=True)]
                )
        return out

    def completion_tokens(self, completions: Sequence[str]) -> int:
        return tokens_of(self.tokenizer, completions)

    def lineage(self) -> dict:
        return teacher_lineage("transformers", self.source, self.cfg)
