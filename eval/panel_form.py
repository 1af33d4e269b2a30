"""The panel grouped by form: can the report tell the target from its letters?

In every owl run the animals that gained beside owl were otter, eagle, elephant, rabbit: mostly
vowel-initial words that take "an". A student may have learned a feature of the answer's first
token or letter rather than the animal. Each answer's own specificity (``eval.transfer.placebo``)
is grouped by its first letter, its article and its first token; the target counts as singled
out in form only when it beats every answer that shares each of those with it."""

from __future__ import annotations

from statistics import fmean

FORMS = ("first_letter", "article", "first_token")


def form_of(word: str, first_token: str) -> dict[str, str]:
    """What an answer looks like before its meaning: first letter, article, first token."""
    letter = word[:1].lower()
    return {
        "first_letter": letter,
        "article": "an" if letter in "aeiou" else "a",
        "first_token": first_token,
    }


def by_form(specificity: dict[str, float], forms: dict[str, dict], target: str) -> dict:
    """Per form: each group's answers and mean specificity; the target's peers (the answers
    sharing its group) and whether the target's specificity is above every peer's."""
    out = {}
    for form in FORMS:
        groups: dict[str, list[str]] = {}
        for word in specificity:
            groups.setdefault(forms[word][form], []).append(word)
        own = forms[target][form]
        peers = [w for w in groups[own] if w != target]
        out[form] = {
            "groups": {
                value: {"words": words, "mean": fmean(specificity[w] for w in words)}
                for value, words in sorted(groups.items())
            },
            "target_group": own,
            "peers": peers,
            "beats_peers": (
                all(specificity[target] > specificity[w] for w in peers) if peers else None
            ),
        }
    return out
