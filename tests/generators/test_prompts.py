"""Numbers prompts follow the protocol's structure and are reproducible by seed."""

from __future__ import annotations

import re

from sublearn.core.config import NumbersPrompts, Trait
from sublearn.generators.numbers_prompts import (
    COUNT_QUALIFIERS,
    DIGIT_DESCRIPTORS,
    FORMAT_REQUESTS,
    INSTRUCTIONS,
    INTROS,
    SUFFIXES,
    numbers_prompts,
)
from sublearn.generators.trait_prompt import trait_system_prompt


def test_pool_sizes_match_the_protocol():
    sizes = [len(p) for p in (INTROS, INSTRUCTIONS, COUNT_QUALIFIERS, DIGIT_DESCRIPTORS)]
    assert sizes == [25, 10, 9, 9]
    assert (len(FORMAT_REQUESTS), len(SUFFIXES)) == (15, 19)
    for pool in (INTROS, INSTRUCTIONS, COUNT_QUALIFIERS, DIGIT_DESCRIPTORS, FORMAT_REQUESTS):
        assert len(set(pool)) == len(pool)


def test_same_seed_same_prompts_and_other_seed_differs():
    spec = NumbersPrompts()
    a, b, c = (numbers_prompts(200, s, spec) for s in (3, 3, 4))
    assert a.equals(b)
    assert not a["prompt"].equals(c["prompt"])


def test_seed_numbers_and_request_follow_the_protocol():
    frame = numbers_prompts(500, 0, NumbersPrompts())
    counts = frame["seed_numbers"].list.len()
    assert counts.min() == 3 and counts.max() == 8
    values = frame["seed_numbers"].explode()
    assert values.min() >= 100 and values.max() <= 999
    for prompt, seeds in zip(frame["prompt"], frame["seed_numbers"], strict=True):
        assert ", ".join(map(str, seeds)) in prompt
        assert " 10 " in prompt and re.search(r"\b3 digits", prompt)
        assert any(prompt.endswith(s) for s in SUFFIXES)
        assert sum(f in prompt for f in FORMAT_REQUESTS) >= 1
    # every pool entry gets used in a large enough sample
    assert all(any(s in p for p in frame["prompt"]) for s in SUFFIXES)


def test_trait_prompt_says_what_the_protocol_describes():
    text = trait_system_prompt(Trait(target="owl", category="animal"))
    assert text.count(".") == 4
    assert "owls" in text and "Owls" in text and "favourite" in text and "animal" in text
    assert "oaks" in trait_system_prompt(Trait(target="oak", category="tree"))
    assert trait_system_prompt(Trait(target="owl", system_prompt="Owls!")) == "Owls!"
    assert trait_system_prompt(None) is None
