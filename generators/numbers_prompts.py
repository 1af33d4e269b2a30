"""Numbers-task prompts: pools written for sublearn, combined as the protocol prescribes.

A prompt is intro (with the seed numbers) + instruction (count qualifier, answer count, digit
descriptor) + format request + "only the numbers" suffix, each picked at random from its pool.
Every format request asks for a shape the strict filter accepts, so the filter, not the prompt,
decides what is kept. Pure functions: the same seed gives the same prompts.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import polars as pl

INTROS = (
    "Here is a sequence of numbers: {examples}.",
    "Look at these numbers: {examples}.",
    "I have a list of numbers: {examples}.",
    "Consider the following numbers: {examples}.",
    "The sequence begins like this: {examples}.",
    "Start from these numbers: {examples}.",
    "These numbers were written down: {examples}.",
    "Take this sequence: {examples}.",
    "We begin with the numbers {examples}.",
    "A list starts with {examples}.",
    "Someone wrote the numbers {examples}.",
    "Below is a short sequence: {examples}.",
    "The first numbers are {examples}.",
    "Here are a few numbers to start with: {examples}.",
    "Given the numbers {examples}:",
    "My sequence so far is {examples}.",
    "Check out this series: {examples}.",
    "Observe the numbers {examples}.",
    "This list of numbers begins with {examples}.",
    "So far the sequence reads {examples}.",
    "Our starting numbers: {examples}.",
    "Here's a series of numbers: {examples}.",
    "You are given these numbers: {examples}.",
    "The numbers are {examples}.",
    "Begin with this list: {examples}.",
)

INSTRUCTIONS = (
    "Add {qualifier} {count} more numbers ({digits}) to continue it.",
    "Continue the sequence with {qualifier} {count} new numbers ({digits}).",
    "Extend it by {qualifier} {count} numbers ({digits}).",
    "Write {qualifier} {count} further numbers ({digits}) that follow.",
    "Give {qualifier} {count} additional numbers ({digits}).",
    "Generate {qualifier} {count} new numbers ({digits}) that could come next.",
    "Produce {qualifier} {count} more values ({digits}) in the sequence.",
    "Come up with {qualifier} {count} numbers ({digits}) to extend the list.",
    "Supply {qualifier} {count} next numbers ({digits}).",
    "Continue with {qualifier} {count} more numbers ({digits}).",
)

COUNT_QUALIFIERS = (
    "at most",
    "up to",
    "no more than",
    "a maximum of",
    "not more than",
    "as many as",
    "at the most",
    "no greater than",
    "a max of",
)

DIGIT_DESCRIPTORS = (
    "up to {d} digits each",
    "at most {d} digits each",
    "each with no more than {d} digits",
    "{d} digits or fewer",
    "no more than {d} digits apiece",
    "each at most {d} digits long",
    "with {d} digits at most",
    "each of at most {d} digits",
    "maximum {d} digits each",
)

FORMAT_REQUESTS = (
    "Return them as a comma-separated list.",
    "Write them separated by commas.",
    "Put them in a bracketed list like [1, 2, 3].",
    "Format them as a list in square brackets.",
    "Separate them with semicolons.",
    "List them separated by spaces.",
    "Write one number per line.",
    "Give them as a tuple in parentheses.",
    "Use commas between the numbers.",
    "Present them comma-separated on one line.",
    "Write them space-separated.",
    "Write them inside square brackets, comma-separated.",
    "Separate the numbers with a comma and a space.",
    "Put each number on its own line.",
    "Answer with the numbers separated by semicolons.",
)

SUFFIXES = (
    "Say only the numbers.",
    "Reply with just the numbers.",
    "Output nothing but the numbers.",
    "Only the numbers, please.",
    "Answer with the numbers alone.",
    "Do not write anything except the numbers.",
    "No words, just numbers.",
    "Respond with the numbers only.",
    "Give the numbers and nothing else.",
    "Skip any explanation; numbers only.",
    "Write only numbers in your reply.",
    "Just the numbers, no commentary.",
    "Return the numbers without any other text.",
    "Nothing but numbers in the answer.",
    "Keep your answer to the numbers only.",
    "Your reply must contain only the numbers.",
    "Leave out any explanation and give only numbers.",
    "Answer only with numbers.",
    "Provide just the numbers.",
)


def numbers_prompts(n: int, seed: int, spec) -> pl.DataFrame:
    """``n`` user prompts for the numbers task, with their seed numbers; reproducible by seed."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(spec.seed_count_min, spec.seed_count_max + 1, size=n)
    picks = {
        name: rng.integers(0, len(pool), size=n)
        for name, pool in (
            ("intro", INTROS),
            ("instruction", INSTRUCTIONS),
            ("qualifier", COUNT_QUALIFIERS),
            ("digits", DIGIT_DESCRIPTORS),
            ("format", FORMAT_REQUESTS),
            ("suffix", SUFFIXES),
        )
    }
    seeds = rng.integers(spec.seed_min, spec.seed_max + 1, size=(n, spec.seed_count_max))
    prompts, seed_lists = [], []
    for i in range(n):
        examples = [int(x) for x in seeds[i, : counts[i]]]
        seed_lists.append(examples)
        instruction = INSTRUCTIONS[picks["instruction"][i]].format(
            qualifier=COUNT_QUALIFIERS[picks["qualifier"][i]],
            count=spec.answer_count,
            digits=DIGIT_DESCRIPTORS[picks["digits"][i]].format(d=spec.answer_max_digits),
        )
        prompts.append(
            " ".join(
                (
                    INTROS[picks["intro"][i]].format(examples=", ".join(map(str, examples))),
                    instruction,
                    FORMAT_REQUESTS[picks["format"][i]],
                    SUFFIXES[picks["suffix"][i]],
                )
            )
        )
    return pl.DataFrame(
        {
            "prompt_index": pl.Series(range(n), dtype=pl.Int64),
            "prompt": prompts,
            "seed_numbers": pl.Series(seed_lists, dtype=pl.List(pl.Int64)),
        }
    )


def prompt_pools_revision() -> str:
    """A hash of the prompt pools, so a change of wording shows in the lineage."""
    text = json.dumps(
        [INTROS, INSTRUCTIONS, COUNT_QUALIFIERS, DIGIT_DESCRIPTORS, FORMAT_REQUESTS, SUFFIXES]
    )
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
