"""A grammar as token masks in the decode loop: one llguidance matcher per row, every row's
allowed tokens computed in parallel (in Rust, off the GIL) at each step, the sampled tokens fed
back in parallel. It speaks the decode loop's stop-rule protocol (``start``, ``apply``,
``update``, ``select``), so the loop treats a grammar as it treats the numbers' stop rule.

Why llguidance: it compiles a grammar against the tokenizer's whole vocabulary (tokens that
split a tag or a fence in odd places included) and computes a 49k-token mask in microseconds;
its GBNF converter lets the one grammar llama.cpp takes drive the torch loop too.
"""

from __future__ import annotations

from functools import cache

import torch

# The bits of every byte value, as booleans: a mask's bytes index it, 3x faster than shifting.
# llguidance sets bit i % 32 of word i // 32 for token i; the words are little-endian ints.
BYTE_BITS = ((torch.arange(256).unsqueeze(-1) >> torch.arange(8)) & 1).bool()


@cache
def _tokenizer(hf_tokenizer, eos: int):
    import llguidance.hf

    return llguidance.hf.from_tokenizer(hf_tokenizer, eos_token=eos)


class GrammarMasks:
    """Token masks of one grammar (Lark) over ``hf_tokenizer``'s vocabulary; ``eos`` is the
    token that ends an answer (the chat's end of turn), the only one allowed once it is done."""

    def __init__(self, hf_tokenizer, lark: str, eos: int):
        import llguidance

        self.eos = eos
        self.vocab = _tokenizer(hf_tokenizer, eos)
        self.start_state = llguidance.LLMatcher(self.vocab, lark, log_level=0)
        if self.start_state.is_error():
            raise ValueError(f"grammar: {self.start_state.get_error()}")
        self.executor = llguidance.LLExecutor()
        self.words = (self.vocab.vocab_size + 31) // 32

    def start(self, rows: int) -> GrammarState:
        return GrammarState([self.start_state.deep_copy() for _ in range(rows)])

    def allowed(self, state: GrammarState, width: int) -> torch.Tensor:
        """rows x width booleans: the tokens each row's grammar allows next. A row whose
        matcher has failed (a forced token outside the grammar) may only end."""
        rows = len(state.matchers)
        bitmask = torch.zeros(rows, self.words, dtype=torch.int32)
        # the executor's own call: llguidance.torch's wrapper would import torch.compile (2 s)
        self.executor.unsafe_compute_mask_ptr(
            [(m, i) for i, m in enumerate(state.matchers)], bitmask.data_ptr(), self.words * 4, rows
        )
        bits = BYTE_BITS[bitmask.view(torch.uint8).to(torch.int32)]
        allowed = bits.view(rows, -1)[:, :width]
        if width > allowed.shape[1]:  # output rows past the tokenizer's vocabulary
            allowed = torch.nn.functional.pad(allowed, (0, width - allowed.shape[1]))
        allowed[~allowed.any(-1), self.eos] = True
        return allowed

    def apply(
        self, state: GrammarState, scores: torch.Tensor, columns: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``scores`` (rows x vocab, or rows x the token ids ``columns`` lists) with every
        token the grammar does not allow next at -inf."""
        width = scores.shape[-1] if columns is None else int(columns.max()) + 1
        allowed = self.allowed(state, width)
        if columns is not None:
            allowed = allowed[:, columns.cpu()]
        return torch.where(allowed.to(scores.device), scores, float("-inf"))

    def update(self, state: GrammarState, tokens: torch.Tensor) -> None:
        """Feed each row's matcher the token it just produced (finished rows are skipped)."""
        pairs = [
            (m, int(t))
            for m, t in zip(state.matchers, tokens.tolist(), strict=True)
            if not m.is_stopped() and not m.is_error()
        ]
        if pairs:
            self.executor.consume_token_par(pairs)


class GrammarState:
    """Each live row's matcher."""

    def __init__(self, matchers: list):
        self.matchers = matchers

    def select(self, keep: torch.Tensor) -> GrammarState:
        return GrammarState([self.matchers[i] for i in keep.tolist()])
