"""``sublearn audit detect``: can anything tell the trait teacher's rows from the control's?

Reads both datasets (published by tag, or run directories), runs the transparent classifiers
(``eval.detect``) and, with a judge, the study's pairwise test: the judge sees a trait row and a
control row for the same prompt in random order and is asked which one encodes the trait; its
answer is read from the first token's log-probs (P("A") against P("B")). Writes ``detect.json``
and ``detect.png``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import polars as pl

from sublearn.core.chat import ChatPrompt
from sublearn.core.errors import DataError
from sublearn.core.runio import read_parquet, write_figure, write_json
from sublearn.eval.calibration import roc_figure
from sublearn.eval.detect import accuracy_interval, embedding_audit, ngram_audit

PAIRWISE_TEMPLATE = (
    "One of the two texts below was written by someone who loves {trait}; the other was not. "
    "Which one encodes a love of {trait}? Reply with the single letter A or B.\n\n"
    "A:\n{a}\n\nB:\n{b}"
)


def load_rows(source: str) -> tuple[pl.DataFrame, dict]:
    """A run directory (its kept.parquet) or a published dataset OWNER/NAME[@TAG]."""
    path = Path(source)
    if path.is_dir():
        return read_parquet(path / "kept.parquet", ("completion",)), {"run_dir": str(path)}
    if not path.exists() and str(path.parent) != "." and path.parent.is_dir():
        raise DataError(
            f"{source}: no such run directory in {path.parent} "
            "(a published dataset is OWNER/NAME[@TAG])"
        )
    if path.exists() or not re.fullmatch(r"[\w.-]+/[\w.-]+(@[\w./-]+)?", source):
        raise DataError(f"{source}: neither a run directory nor OWNER/NAME[@TAG]")
    from sublearn.flows.experiment import fetch_published

    return fetch_published(source)


def pairwise_test(
    judge, trait_rows: pl.DataFrame, control_rows: pl.DataFrame, trait: str, seed: int
) -> dict:
    key = "prompt" if "prompt" in trait_rows.columns and "prompt" in control_rows.columns else None
    if key is None:
        raise DataError("the pairwise test needs a 'prompt' column in both datasets")
    pairs = (
        trait_rows.select(key, pl.col("completion").alias("t"))
        .join(control_rows.select(key, pl.col("completion").alias("c")), on=key)
        .unique(subset=key, keep="first", maintain_order=True)
    )
    identical = int((pairs["t"] == pairs["c"]).sum())
    pairs = pairs.filter(pl.col("t") != pl.col("c"))  # no answer can be right for these
    if pairs.height == 0:
        raise DataError("no prompt has two different rows in the datasets; nothing to pair")
    rng = np.random.default_rng(seed)
    trait_first = rng.random(pairs.height) < 0.5
    prompts = [
        ChatPrompt(
            None, PAIRWISE_TEMPLATE.format(trait=trait, a=t if first else c, b=c if first else t)
        )
        for t, c, first in zip(pairs["t"], pairs["c"], trait_first, strict=True)
    ]
    correct = []
    for top, first in zip(judge.first_token_top(prompts, 20), trait_first, strict=True):
        p = {"A": 0.0, "B": 0.0}
        for text, lp in top:
            if text.strip() in p:
                p[text.strip()] += math.exp(lp)
        correct.append((p["A"] > p["B"]) == bool(first))
    return {**accuracy_interval(correct, seed), "identical_pairs_skipped": identical}


def roc_curves(results: dict) -> dict[str, tuple[list, list, float]]:
    from sklearn.metrics import roc_curve

    curves = {}
    for name, r in results.items():
        fpr, tpr, _ = roc_curve(r["labels"], r["roc_scores"])
        curves[name] = (fpr.tolist(), tpr.tolist(), r["auc"]["mean"])
    return curves


def detect(
    trait: str,
    dataset: str,
    control: str,
    out: Path,
    judge: str | None,
    seed: int = 0,
    embed: str | None = "minilm",
) -> dict:
    trait_rows, trait_source = load_rows(dataset)
    control_rows, control_source = load_rows(control)
    if trait_rows.height < 5 or control_rows.height < 5:
        raise DataError("each dataset needs at least 5 rows for cross-validation")
    texts_t, texts_c = trait_rows["completion"].to_list(), control_rows["completion"].to_list()
    classifiers = {"n-grams": ngram_audit(texts_t, texts_c, seed)}
    if embed:
        from sublearn.filters.leak import load_embedder

        encode = load_embedder(embed)
        classifiers[f"embeddings ({embed})"] = embedding_audit(
            encode(texts_t), encode(texts_c), seed, texts_t + texts_c
        )
    best = max(classifiers, key=lambda k: classifiers[k]["auc"]["mean"])
    result = {
        "trait": trait,
        "dataset": trait_source,
        "control": control_source,
        "rows": {"trait": trait_rows.height, "control": control_rows.height},
        "shared_texts": len(set(texts_t) & set(texts_c)),
        "auc": {**classifiers[best]["auc"], "classifier": best},
        "classifiers": {
            k: {kk: vv for kk, vv in v.items() if kk not in ("roc_scores", "labels")}
            for k, v in classifiers.items()
        },
    }
    if judge:
        from sublearn.core.config import JudgeFilter
        from sublearn.core.words import plural_of
        from sublearn.filters.judge import judge_teacher_config
        from sublearn.generators.backends import load_teacher

        model = load_teacher(judge_teacher_config(JudgeFilter(model=judge)))
        result["pairwise"] = {
            **pairwise_test(model, trait_rows, control_rows, plural_of(trait), seed),
            "judge": judge,
        }
    out.mkdir(parents=True, exist_ok=True)
    write_json(result, out / "detect.json")
    write_figure(roc_figure(roc_curves(classifiers), "trait vs control rows"), out / "detect.png")
    return result
