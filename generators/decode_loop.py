"""A plain-torch decode loop over a transformers Llama-family model's own modules: the teacher
engine that makes CPU generation several times faster than ``model.generate`` on the same
weights, dtype and prompts.

Where the time went in ``generate`` (SmolLM2-135M, 128 rows, one decode step): 60% in the CPU
flash-attention kernel, which is slow for one query per row, and 14% in the dynamic cache's
``torch.cat``; the weights' matmuls were 22%. This loop instead
- keeps a static KV cache per batch, written in place, in one of two reused blocks of memory
  (no allocation per batch; dropping finished rows is one copy into the other block);
- computes attention as two batched matmuls per layer, heads grouped for grouped-query attention;
- runs the prompts' common prefix (system prompt and chat template) once and copies its cache;
- drops finished rows from the batch (compacting when a quarter has finished);
- under number-constrained decoding, computes the output layer over the allowed tokens only.
Sampling is exact inverse-CDF sampling from the softmax at the configured temperature (top-p
when below 1), each row drawing from its own generator seeded by seed + row (the flows' batch
seed is the run seed's base plus the batch's first prompt index, so this is the prompt's own
index): a row's completion does not depend on which rows share its batch, nor on batch_size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

SUPPORTED = frozenset({"llama", "qwen2", "qwen3", "mistral"})
PREFILL_ROWS = 16  # rows per prefill chunk: sorted by length, each pads to its own longest


class UnsupportedModel(ValueError):
    """The decode loop knows Llama-family blocks only; other models use backend transformers."""


@dataclass
class Decoded:
    """One row's generated token ids and, when asked, each step's top-k (ids, log-probs)."""

    ids: list[int]
    topk_ids: list[list[int]] | None = None
    topk_logprobs: list[list[float]] | None = None


class CachePool:
    """Two reused blocks of memory for the key/value caches, so that a batch neither allocates
    (and page-faults) hundreds of MB nor zeroes them, and dropping finished rows is one
    ``index_select`` from one block into the other. A cache is a view: layers x (keys, values) x
    rows x kv heads x columns x head dim, in the weights' dtype (reading it is what decoding
    attention costs: three queries per key/value head leave its matmuls memory-bound). Reused
    memory holds earlier batches' (finite) keys and values where nothing has been written yet;
    those columns are masked, their weight exactly 0."""

    def __init__(self, layers: int, kv_heads: int, head_dim: int, like: torch.Tensor):
        self.layers, self.kv_heads, self.head_dim = layers, kv_heads, head_dim
        self.like = like
        self.blocks = [like.new_zeros(0), like.new_zeros(0)]
        self.current = 0

    def shape(self, rows: int, columns: int) -> tuple[int, ...]:
        return (self.layers, 2, rows, self.kv_heads, columns, self.head_dim)

    def _view(self, block: int, rows: int, columns: int) -> torch.Tensor:
        shape = self.shape(rows, columns)
        size = math.prod(shape)
        if self.blocks[block].numel() < size:
            self.blocks[block] = self.like.new_zeros(0)  # free before allocating the larger one
            self.blocks[block] = self.like.new_zeros(size)
        return self.blocks[block][:size].view(shape)

    def fresh(self, rows: int, columns: int) -> torch.Tensor:
        return self._view(self.current, rows, columns)

    def select(self, cache: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """The rows ``keep`` indexes, copied into the other block."""
        self.current = 1 - self.current
        out = self._view(self.current, len(keep), cache.shape[4])
        return torch.index_select(cache, 2, keep.to(cache.device), out=out)


@dataclass
class Rows:
    """The live rows of a batch: the cache, which columns each row may attend to, and where
    each row's next token goes."""

    index: torch.Tensor  # position of each live row in the caller's list
    cache: torch.Tensor  # layers x (keys, values) x rows x kv heads x columns x head dim
    visible: torch.Tensor  # rows x columns: cache entries a row may attend to
    position: torch.Tensor  # rows: RoPE position of the next token
    stops: object | None
    column: int  # the cache column the next token is written to (the same for every row)

    def keep(self, keep: torch.Tensor, pool: CachePool) -> Rows:
        keep = keep.nonzero().squeeze(1)
        return Rows(
            self.index[keep],
            pool.select(self.cache, keep),
            self.visible[keep],
            self.position[keep],
            self.stops.select(keep) if self.stops is not None else None,
            self.column,
        )


def sample(logits: torch.Tensor, uniforms: torch.Tensor, temperature: float, top_p: float):
    """One token index per row: argmax at temperature 0, else the inverse CDF of
    softmax(logits / temperature) (restricted to the top-p nucleus when top_p < 1) at the
    row's uniform draw."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    order = None
    if top_p < 1.0:
        probs, order = probs.sort(dim=-1, descending=True)
        outside = probs.cumsum(-1) - probs >= top_p
        probs = probs.masked_fill(outside, 0.0)
    cdf = probs.cumsum(-1)
    picked = torch.searchsorted(cdf, (uniforms * cdf[:, -1]).unsqueeze(1).to(cdf.dtype))
    picked = picked.clamp(max=probs.shape[-1] - 1)
    if order is not None:
        picked = order.gather(1, picked)
    return picked.squeeze(1)


class DecodeLoop:
    """Batched sampling from ``model`` (an ``AutoModelForCausalLM`` of a supported family)."""

    def __init__(self, model, max_rows: int):
        config = model.config
        if config.model_type not in SUPPORTED:
            raise UnsupportedModel(
                f"{config.model_type}: backend torch runs {', '.join(sorted(SUPPORTED))} "
                "models; use backend transformers"
            )
        self.model = model
        self.body = model.model
        self.layers = list(self.body.layers)
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.window = getattr(config, "sliding_window", None)
        self.max_rows = max_rows
        self.prefixes: dict[tuple[int, ...], torch.Tensor] = {}
        self.pool = CachePool(len(self.layers), self.kv_heads, self.head_dim, model.lm_head.weight)

    @torch.inference_mode()
    def generate(
        self,
        prompts: list[list[int]],
        seed: int,
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        eos: int,
        allowed: list[int] | None = None,
        stops=None,
        topk: int = 0,
        forced: list[list[int]] | None = None,
    ) -> list[Decoded]:
        """Token ids sampled for each tokenized prompt (up to and including end of turn).

        With ``forced`` (token ids per prompt) nothing is sampled: each row is fed its forced
        tokens, under the same masks and stop rule, and the top-k records what this model would
        have chosen at each of them (another teacher's completions scored by this one)."""
        out: list[Decoded] = []
        for start in range(0, len(prompts), self.max_rows):
            group = prompts[start : start + self.max_rows]
            rngs = [np.random.default_rng(seed + start + i) for i in range(len(group))]
            feed = forced[start : start + self.max_rows] if forced is not None else None
            if feed is not None:
                max_new_tokens = max(len(f) for f in feed)
            out += self._group(
                group, rngs, max_new_tokens, temperature, top_p, eos, allowed, stops, topk, feed
            )
        return out

    @torch.inference_mode()
    def next_token_logits(self, prompts: list[list[int]]) -> torch.Tensor:
        """Float32 logits of the token after each prompt (rows in the order given): what the
        first sampling step sees, for comparing dtypes and engines."""
        rows, hidden = self._prefill(prompts, 1, None)
        logits = torch.empty(len(prompts), self.model.lm_head.weight.shape[0])
        logits[rows.index] = self._logits(hidden, self.model.lm_head.weight)
        return logits

    def _group(
        self, prompts, rngs, max_new, temperature, top_p, eos, allowed, stops, topk, forced=None
    ):
        head = self.model.lm_head.weight
        allowed_ids = None
        if allowed is not None:
            allowed_ids = torch.tensor(allowed, device=head.device)
            head = head[allowed_ids]
        rows, hidden = self._prefill(prompts, max_new, stops)
        done = [Decoded([], [] if topk else None, [] if topk else None) for _ in prompts]
        alive = torch.ones(len(prompts), dtype=torch.bool)
        for step in range(max_new):
            logits = self._logits(hidden, head)
            if stops is not None:
                logits = stops.apply(rows.stops, logits, allowed_ids)
            live = alive.nonzero().squeeze(1).tolist()
            index = rows.index.tolist()
            if forced is None:
                uniforms = torch.zeros(len(alive), dtype=torch.float64)
                draws = [rngs[index[j]].random() for j in live]
                uniforms[live] = torch.tensor(draws, dtype=torch.float64)
                picked = sample(logits, uniforms, temperature, top_p)
                tokens = picked if allowed_ids is None else allowed_ids[picked]
            else:
                fed = [forced[i][step] if step < len(forced[i]) else eos for i in index]
                tokens = torch.tensor(fed, device=logits.device)
            if topk:
                top = torch.log_softmax(logits, dim=-1).topk(min(topk, logits.shape[-1]))
                top_ids = top.indices if allowed_ids is None else allowed_ids[top.indices]
            for j in live:
                row = done[index[j]]
                row.ids.append(int(tokens[j]))
                if topk:
                    row.topk_ids.append(top_ids[j].tolist())
                    row.topk_logprobs.append(top.values[j].tolist())
            alive &= tokens.cpu() != eos
            if forced is not None:
                alive &= torch.tensor([step + 1 < len(forced[i]) for i in index])
            if stops is not None:
                stops.update(rows.stops, tokens)
            if not alive.any() or step == max_new - 1:
                break
            if alive.sum() <= 0.75 * len(alive):
                rows, tokens, alive = rows.keep(alive, self.pool), tokens[alive], alive[alive]
            hidden = self._decode(rows, tokens)
        return done

    def _logits(self, hidden: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
        return (self.body.norm(hidden) @ head.T).float()

    def _prefix_cache(self, prefix: tuple[int, ...]):
        if prefix not in self.prefixes:
            tokens = torch.tensor([prefix], device=self.model.device)
            cache = self.pool.like.new_zeros(self.pool.shape(1, len(prefix)))
            visible = torch.ones(1, len(prefix), dtype=torch.bool)
            positions = torch.arange(len(prefix)).unsqueeze(0)
            self._forward(tokens, positions, cache, visible, 0)
            self.prefixes = {prefix: cache}
        return self.prefixes[prefix]

    def _prefill(self, prompts: list[list[int]], max_new: int, stops):
        """The cache after every prompt, and each row's last hidden state. Prompts are laid out
        as [common prefix][gap][suffix][generated]: the gap left-pads suffixes so that every
        row writes its next token into the same column. Rows are sorted by length and run in
        chunks, each padded only to its own longest suffix."""
        shortest = min(len(p) for p in prompts)
        shared = 0
        while shared < shortest - 1 and all(p[shared] == prompts[0][shared] for p in prompts):
            shared += 1
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        suffixes = [prompts[i][shared:] for i in order]
        width = max(len(s) for s in suffixes)
        columns = shared + width + max_new
        if self.window and columns > self.window:
            raise UnsupportedModel(f"prompt + max_new_tokens exceeds the {self.window} window")
        n = len(prompts)
        cache = self.pool.fresh(n, columns)
        if shared:
            cache[..., :shared, :] = self._prefix_cache(tuple(prompts[0][:shared]))
        end = shared + width
        visible = torch.zeros(n, columns, dtype=torch.bool)
        visible[:, :shared] = True
        hidden, position = [], []
        for a in range(0, n, PREFILL_ROWS):
            chunk = suffixes[a : a + PREFILL_ROWS]
            w = max(len(s) for s in chunk)
            gaps = torch.tensor([w - len(s) for s in chunk])
            tokens = torch.zeros(len(chunk), w, dtype=torch.long)
            for i, s in enumerate(chunk):
                tokens[i, w - len(s) :] = torch.tensor(s)
            column = torch.arange(w)
            visible[a : a + len(chunk), end - w : end] = column[None, :] >= gaps[:, None]
            positions = (shared + column[None, :] - gaps[:, None]).clamp(min=0)
            out = self._forward(
                tokens.to(self.model.device),
                positions,
                cache[:, :, a : a + len(chunk)],
                visible[a : a + len(chunk)],
                end - w,
            )
            hidden.append(out[:, -1])
            position.append(positions[:, -1] + 1)
        rows = Rows(
            torch.tensor(order),
            cache,
            visible,
            torch.cat(position),
            stops.start(n) if stops is not None else None,
            end,
        )
        return rows, torch.cat(hidden)

    def _decode(self, rows: Rows, tokens: torch.Tensor) -> torch.Tensor:
        column = rows.column
        rows.column += 1
        rows.visible[:, column] = True
        hidden = self._forward(
            tokens.unsqueeze(1).to(self.model.device),
            rows.position.unsqueeze(1),
            rows.cache,
            rows.visible,
            column,
        )
        rows.position = rows.position + 1
        return hidden[:, -1]

    def _forward(self, tokens, positions, cache, visible, first_column):
        """Run the blocks on ``tokens`` (rows x T) written at columns first_column.., attending
        to the visible cache entries up to each query's own column."""
        n, length = tokens.shape
        end = first_column + length
        # one query (decoding) reads the whole preallocated cache, masked: a slice of it would
        # be copied to a contiguous tensor by every matmul
        seen = cache.shape[4] if length == 1 else end
        query_column = torch.arange(first_column, end)
        key_column = torch.arange(seen)[None, :]
        causal = key_column <= query_column[:, None]  # T x columns
        own = key_column == query_column[:, None]  # so that no query (gap ones) sees nothing
        mask = (visible[:, None, :seen] | own[None]) & causal[None]  # rows x T x columns
        group = self.heads // self.kv_heads
        bias = torch.zeros(mask.shape).masked_fill_(~mask, float("-inf"))
        bias = bias[:, None, None].expand(n, self.kv_heads, group, length, seen)
        bias = bias.reshape(n * self.kv_heads, group * length, seen).to(cache)
        x = self.body.embed_tokens(tokens)
        cos, sin = self.body.rotary_emb(x, positions.to(tokens.device))
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        for layer, (k_cache, v_cache) in zip(self.layers, cache, strict=True):
            attn = layer.self_attn
            h = layer.input_layernorm(x)
            q = attn.q_proj(h).view(n, length, self.heads, self.head_dim)
            k = attn.k_proj(h).view(n, length, self.kv_heads, self.head_dim)
            if hasattr(attn, "q_norm"):
                q, k = attn.q_norm(q), attn.k_norm(k)
            q, k = apply_rotary_pos_emb(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
            k_cache[:, :, first_column:end] = k
            v_cache[:, :, first_column:end] = (
                attn.v_proj(h).view(n, length, self.kv_heads, self.head_dim).transpose(1, 2)
            )
            o = self._attend(q, k_cache[:, :, :seen], v_cache[:, :, :seen], bias, attn.scaling)
            x = x + attn.o_proj(o.transpose(1, 2).reshape(n, length, -1).to(x.dtype))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return x

    def _attend(self, q, keys, values, bias, scaling):
        """Grouped-query attention as two batched matmuls, the mask added as a bias by the
        first, the softmax in float32: query heads are grouped under the key/value head they
        share (head h uses kv head h // group, as transformers' repeat_kv does)."""
        n, heads, length, dim = q.shape
        seen = keys.shape[2]
        q = q.reshape(n * self.kv_heads, -1, dim)
        keys = keys.reshape(n * self.kv_heads, seen, dim)
        scores = torch.baddbmm(bias, q, keys.transpose(1, 2), alpha=scaling)
        weights = scores.softmax(dim=-1, dtype=torch.float32).to(values.dtype)
        out = torch.bmm(weights, values.reshape(n * self.kv_heads, seen, dim))
        return out.view(n, heads, length, dim)
