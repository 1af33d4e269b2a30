"""The trait-word filter: reject a completion that names the trait as a whole word.

Text is folded first (NFKC, accents and zero-width characters removed, identifiers split on
case changes, digits and underscores), so "ＯＷＬ", "Owl" with a combining accent, "O\u200bwl",
``owlCount``, ``OWL_SIZE`` and ``get_owls`` all read as "owl", while "knowledge", "bowl" and
"howl" do not (the study's substring test rejected those). Comments and string literals are
text like any other. Words hold letters only, so a multi-word trait name is matched as its
words in a row.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import ClassVar

import polars as pl

# Invisible characters that can split a word without showing: zero-width space, non-joiner and
# joiner, word joiner, BOM, soft hyphen, Mongolian vowel separator.
INVISIBLE = "[\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e]"
# Identifier boundaries: lower/digit -> upper ("owlCount"), and the end of an acronym before a
# capitalised word ("OWLCount"); both readings are searched, so "OWLs" still reads as "owls".
LOWER_UPPER = (r"(\p{Ll}|[0-9])(\p{Lu})", "$1 $2")
ACRONYM_END = (r"(\p{Lu})(\p{Lu}\p{Ll})", "$1 $2")


def _folded(text: pl.Expr) -> pl.Expr:
    text = text.str.normalize("NFKC").str.replace_all(INVISIBLE, "")
    return text.str.normalize("NFD").str.replace_all(r"\p{Mn}", "")


def _words(text: pl.Expr) -> pl.Expr:
    """Lower-case words separated by single spaces, with a space at each end."""
    spaced = text.str.replace_all(r"[^\p{L}]+", " ").str.to_lowercase()
    return pl.lit(" ") + spaced.str.strip_chars(" ") + pl.lit(" ")


def words_pattern(words: tuple[str, ...]) -> str:
    forms = sorted({" ".join(re.findall(r"[^\W\d_]+", w.lower())) for w in words} - {""})
    return " (?:" + "|".join(re.escape(f) for f in forms) + ") "


def names_trait_expr(words: tuple[str, ...], column: str = "completion") -> pl.Expr:
    folded = _folded(pl.col(column))
    camel = folded.str.replace_all(*LOWER_UPPER)
    both = _words(camel) + _words(camel.str.replace_all(*ACRONYM_END))
    return both.str.contains(words_pattern(words)).fill_null(False)


def normalised_words(text: str) -> list[str]:
    """The same reading one string at a time, in plain Python (the tests' reference)."""
    text = re.sub(INVISIBLE, "", unicodedata.normalize("NFKC", text))
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    camel = "".join(
        " " + c
        if i and _cat(c) == "Lu" and (_cat(text[i - 1]) == "Ll" or text[i - 1] in DIGITS)
        else c
        for i, c in enumerate(text)
    )
    acronym = "".join(
        c + " "
        if _cat(c) == "Lu"
        and camel[i + 1 : i + 2].isupper()
        and _cat(camel[i + 1 : i + 2]) == "Lu"
        and _cat(camel[i + 2 : i + 3]) == "Ll"
        else c
        for i, c in enumerate(camel)
    )
    letters = "".join(c if _cat(c).startswith("L") else " " for c in f"{camel} {acronym}")
    return letters.lower().split()


DIGITS = "0123456789"


def _cat(c: str) -> str:
    return unicodedata.category(c) if len(c) == 1 else ""


@dataclass(frozen=True)
class TraitWord:
    """Rejects rows whose completion names any of ``words`` (all forms given)."""

    words: tuple[str, ...]
    name: ClassVar[str] = "trait_word"
    reasons: ClassVar[tuple[str, ...]] = ("trait_word",)

    def params(self) -> dict:
        return {"words": sorted(self.words)}

    def judge(self, frame: pl.DataFrame) -> pl.DataFrame:
        if not self.words:
            return frame.select(pl.lit(None, dtype=pl.String).alias("reject_reason"))
        hit = names_trait_expr(self.words)
        return frame.select(
            pl.when(hit).then(pl.lit("trait_word")).otherwise(None).alias("reject_reason")
        )
