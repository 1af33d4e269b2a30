"""Word forms of a trait's name: plural, capitalised, irregular. One place for all of them,
since the trait prompt, the trait set, the trait-word filter and the evaluation must agree."""

from __future__ import annotations

# Plurals that the regular rules get wrong, and nouns with more than one accepted plural.
IRREGULAR_PLURALS = {
    "wolf": ("wolves",),
    "goose": ("geese",),
    "mouse": ("mice",),
    "octopus": ("octopuses", "octopi"),
    "ox": ("oxen",),
    "deer": ("deer",),
    "sheep": ("sheep",),
    "moose": ("moose",),
    "fish": ("fish", "fishes"),
    "cactus": ("cacti", "cactuses"),
    "fungus": ("fungi", "funguses"),
    "calf": ("calves",),
    "leaf": ("leaves",),
    "elf": ("elves",),
    "knife": ("knives",),
    "wife": ("wives",),
    "loaf": ("loaves",),
    "hippopotamus": ("hippopotamuses", "hippopotami"),
    "bison": ("bison",),
    "salmon": ("salmon",),
    "buffalo": ("buffaloes", "buffalos", "buffalo"),
    "mango": ("mangoes", "mangos"),
    "person": ("people",),
    "child": ("children",),
    "tooth": ("teeth",),
    "foot": ("feet",),
    "louse": ("lice",),
}


def plural_of(word: str, plural: str | None = None) -> str:
    """The plural a config gives, else the first irregular plural, else the regular one."""
    if plural:
        return plural
    lower = word.lower()
    if lower in IRREGULAR_PLURALS:
        return _same_case(word, IRREGULAR_PLURALS[lower][0])
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        return word[:-1] + "ies"
    return word + "s"


def capitalised(word: str) -> str:
    return word[:1].upper() + word[1:]


def word_forms(word: str, plural: str | None = None) -> set[str]:
    """Lower-case singular and every plural of ``word`` (multi-word names kept whole)."""
    lower = word.strip().lower()
    forms = {lower, plural_of(lower).lower(), *IRREGULAR_PLURALS.get(lower, ())}
    if plural:
        forms.add(plural.strip().lower())
    return forms


def _same_case(model: str, word: str) -> str:
    return capitalised(word) if model[:1].isupper() else word
