"""Can anything tell a trait teacher's rows from a control teacher's? Transparent statistics.

Classifiers are logistic regressions, on token and number n-gram counts and on sentence
embeddings, scored by cross-validated ROC AUC with a bootstrap 95% interval over rows (0.5 means
nothing separates the sets). The most telling features are the largest coefficients of the
n-gram model; single tokens are tested one by one (chi-squared on their counts, Holm-corrected
for the number of tokens tested). The pairwise LLM test's accuracy gets a bootstrap interval too.
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.feature_selection import chi2
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

TOKENS = r"(?u)\b\w+\b|[^\w\s]"  # words and numbers whole, each symbol on its own


def bootstrap_auc(labels: np.ndarray, scores: np.ndarray, seed: int, n: int = 1000) -> dict:
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(n):
        idx = rng.integers(0, len(labels), len(labels))
        if labels[idx].min() != labels[idx].max():
            aucs.append(roc_auc_score(labels[idx], scores[idx]))
    low, high = np.percentile(aucs, [2.5, 97.5])
    return {"mean": float(roc_auc_score(labels, scores)), "low": float(low), "high": float(high)}


def text_groups(texts: list[str]) -> np.ndarray:
    """One group per distinct text, so identical rows never sit on both sides of a fold."""
    ids: dict[str, int] = {}
    return np.array([ids.setdefault(t, len(ids)) for t in texts])


def cross_validated_scores(features, labels: np.ndarray, seed: int, groups: np.ndarray):
    """Out-of-fold P(trait) of every row. Folds keep identical texts together: a text in both
    sets (teachers sharing a sampling seed often write the same row) would otherwise be learnt
    with one label and tested with the other, pushing the AUC below 0.5."""
    splits = min(5, int(np.bincount(labels).min()), len(np.unique(groups)))
    folds = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=seed)
    model = LogisticRegression(max_iter=2000, C=1.0)
    return cross_val_predict(
        model, features, labels, groups=groups, cv=folds, method="predict_proba"
    )[:, 1]


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down correction: family-wise error control over all tokens tested. Written
    here: scipy has only false-discovery-rate control, and statsmodels (which has Holm) would be
    a large dependency for these few lines; the test checks it against hand-computed values."""
    order = np.argsort(p_values)
    m = len(p_values)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def ngram_audit(trait: list[str], control: list[str], seed: int, top: int = 10) -> dict:
    texts = trait + control
    labels = np.r_[np.ones(len(trait), int), np.zeros(len(control), int)]
    vectorizer = CountVectorizer(
        token_pattern=TOKENS, ngram_range=(1, 2), lowercase=False, min_df=2
    )
    counts = vectorizer.fit_transform(texts)
    names = vectorizer.get_feature_names_out()
    scores = cross_validated_scores(counts, labels, seed, text_groups(texts))
    model = LogisticRegression(max_iter=2000).fit(counts, labels)
    coef = model.coef_[0]
    order = np.argsort(coef)
    unigram = np.array([" " not in n for n in names])
    chi, p = chi2(counts[:, unigram], labels)
    p = np.nan_to_num(p, nan=1.0)
    adjusted = holm(p)
    uni_names = names[unigram]
    trait_freq = np.asarray(counts[: len(trait)][:, unigram].sum(axis=0)).ravel() / max(
        len(trait), 1
    )
    control_freq = np.asarray(counts[len(trait) :][:, unigram].sum(axis=0)).ravel() / max(
        len(control), 1
    )
    tested = np.argsort(p)[:top]
    return {
        "auc": bootstrap_auc(labels, scores, seed),
        "features": len(names),
        "towards_trait": [[str(names[i]), float(coef[i])] for i in order[::-1][:top]],
        "towards_control": [[str(names[i]), float(coef[i])] for i in order[:top]],
        "tokens": [
            {
                "token": str(uni_names[i]),
                "per_trait_row": float(trait_freq[i]),
                "per_control_row": float(control_freq[i]),
                "chi2": float(chi[i]),
                "p_holm": float(adjusted[i]),
            }
            for i in tested
        ],
        "tokens_tested": int(unigram.sum()),
        "roc_scores": scores.tolist(),
        "labels": labels.tolist(),
    }


def embedding_audit(
    trait_vectors: np.ndarray, control_vectors: np.ndarray, seed: int, texts: list[str]
) -> dict:
    """``texts``: the rows embedded, trait then control (identical ones share a fold)."""
    features = np.vstack([trait_vectors, control_vectors])
    labels = np.r_[np.ones(len(trait_vectors), int), np.zeros(len(control_vectors), int)]
    scores = cross_validated_scores(features, labels, seed, text_groups(texts))
    return {
        "auc": bootstrap_auc(labels, scores, seed),
        "roc_scores": scores.tolist(),
        "labels": labels.tolist(),
    }


def accuracy_interval(correct: list[bool], seed: int, n: int = 2000) -> dict:
    values = np.asarray(correct, float)
    rng = np.random.default_rng(seed)
    means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(n)]
    low, high = np.percentile(means, [2.5, 97.5])
    return {
        "accuracy": float(values.mean()),
        "low": float(low),
        "high": float(high),
        "pairs": len(values),
    }
